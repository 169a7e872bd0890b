"""The broker-free core: decoding, validation, row building and detectors.

Nothing here imports faust, kafka or clickhouse_connect (a test enforces it), so the same code
runs inside the worker's agents and in ``slowleak replay``.
"""

from slowleak.streams.core.decode import (
    Record,
    Rejected,
    SourceRecord,
    decode_feedback,
    decode_interaction,
)
from slowleak.streams.core.processor import Detector, Output, Processor

__all__ = [
    "Detector",
    "Output",
    "Processor",
    "Record",
    "Rejected",
    "SourceRecord",
    "decode_feedback",
    "decode_interaction",
]
