"""The detector-state table's value codec: JSON, compressed with zlib from 1 KiB on.

A state is one changelog record, and a record over the producer's ``max_request_size`` (1 MB by
default) is refused. Some states grow with what they count: the cost windows of an app keep a
cell per open minute, model and tenant, about 2.6 MB of JSON for an app with 2,000 tenants on
three models. Compressed (zlib level 1, ~6 ms for that state) it is 181 KB, 15 times smaller:
the repeated field names and digits of JSON compress well.

Records written before this codec (plain JSON) read as they are: a zlib stream starts with the
byte ``x`` (0x78), which no JSON text does.
"""

from __future__ import annotations

import zlib
from typing import Any

from faust.serializers import codecs

__all__ = ["COMPRESS_FROM", "STATE_CODEC", "StateCodec"]

#: The codec's name, for a faust schema's ``value_serializer``.
STATE_CODEC = "slowleak_state"
#: Smaller states are stored as plain JSON: compressing them would save little.
COMPRESS_FROM = 1024
_ZLIB_FIRST_BYTE = b"x"
_JSON = codecs.get_codec("json")


class StateCodec(codecs.Codec):
    """JSON, zlib-compressed when :data:`COMPRESS_FROM` bytes or more; reads both."""

    def _dumps(self, obj: Any) -> bytes:
        raw = bytes(_JSON.dumps(obj))
        return zlib.compress(raw, 1) if len(raw) >= COMPRESS_FROM else raw

    def _loads(self, s: bytes) -> Any:
        if s[:1] == _ZLIB_FIRST_BYTE:
            s = zlib.decompress(s)
        return _JSON.loads(s)


codecs.register(STATE_CODEC, StateCodec())
