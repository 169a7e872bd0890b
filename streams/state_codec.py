"""The detector-state table's value codec, and states stored in parts.

A state is one changelog record, and a record over the producer's ``max_request_size`` (1 MB by
default) is refused. Some states grow with what they count: the cost windows of an app keep a
cell per open minute, model and tenant, about 2.6 MB of JSON for an app with 2,000 tenants on
three models. Compressed (zlib level 1, ~6 ms for that state) it is 181 KB, 15 times smaller:
the repeated field names and digits of JSON compress well.

A state still larger than a record may be (tens of thousands of tenants) is stored in parts
(:func:`split_record`): its encoded record cut into pieces, each its own record under
``parts/<gen>/<i>/<key>``, then a manifest under the state's own key naming how many parts
there are, their length and their CRC-32. All go to the same partition, in that order, so a
restored table that holds a manifest holds the parts written before it. Two generations
alternate: a write never overwrites the parts of the manifest stored last, so a crash between
the parts and their manifest leaves the previous state whole. :func:`read_state` puts the
parts back together; a missing or damaged part makes the state unknown (``None``, as a state
never stored), never a wrong one.

Records written before this codec (plain JSON) read as they are: a zlib stream starts with the
byte ``x`` (0x78), which no JSON text does; a part starts with a zero byte, which neither does.

>>> state = {"v": 1, "cells": list(range(8))}
>>> records = split_record("cost/a", codecs.dumps(STATE_CODEC, state), limit=40, gen=1)
>>> [key for key, _ in records]
['parts/1/0/cost/a', 'parts/1/1/cost/a', 'cost/a']
>>> stored = {key: codecs.loads(STATE_CODEC, record) for key, record in records}
>>> read_state("cost/a", stored["cost/a"], stored.get)
{'v': 1, 'cells': [0, 1, 2, 3, 4, 5, 6, 7]}
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable
from typing import Any

from faust.serializers import codecs

__all__ = [
    "COMPRESS_FROM",
    "STATE_CODEC",
    "StateCodec",
    "manifest_gen",
    "part_key",
    "read_state",
    "split_record",
]

log = logging.getLogger(__name__)

#: The codec's name, for a faust schema's ``value_serializer``.
STATE_CODEC = "slowleak_state"
#: Smaller states are stored as plain JSON: compressing them would save little.
COMPRESS_FROM = 1024
_ZLIB_FIRST_BYTE = b"x"
#: The first byte of a part's record (the rest is a piece of the state's record, as it is).
_PART_FIRST_BYTE = b"\x00"
#: The field that makes a stored dict a manifest of parts (no detector state has it).
_PARTS = "slowleak_parts"
_JSON = codecs.get_codec("json")


class StateCodec(codecs.Codec):
    """JSON, zlib-compressed when :data:`COMPRESS_FROM` bytes or more; ``bytes`` (a part of a
    state stored in parts) as they are after a zero byte. Reads all three."""

    def _dumps(self, obj: Any) -> bytes:
        if isinstance(obj, bytes):
            return _PART_FIRST_BYTE + obj
        raw = bytes(_JSON.dumps(obj))
        return zlib.compress(raw, 1) if len(raw) >= COMPRESS_FROM else raw

    def _loads(self, s: bytes) -> Any:
        first = s[:1]
        if first == _PART_FIRST_BYTE:
            return bytes(s[1:])
        if first == _ZLIB_FIRST_BYTE:
            s = zlib.decompress(s)
        return _JSON.loads(s)


codecs.register(STATE_CODEC, StateCodec())


def part_key(key: str, gen: int, index: int) -> str:
    """Store key of part ``index`` of generation ``gen`` of the state stored under ``key``."""
    return f"parts/{gen}/{index}/{key}"


def split_record(key: str, raw: bytes, *, limit: int, gen: int) -> list[tuple[str, bytes]]:
    """The records that store ``raw`` (a state's record under ``key``, with its key over
    ``limit`` bytes) as parts of generation ``gen``: each ``(key, record)`` at most ``limit``
    bytes, the parts first, the manifest last."""
    room = limit - len(part_key(key, gen, 10**6)) - len(_PART_FIRST_BYTE)
    if room < 1:
        raise ValueError(f"a record limit of {limit} bytes leaves no room for a part of {key}")
    pieces = [raw[i : i + room] for i in range(0, len(raw), room)]
    manifest = {_PARTS: len(pieces), "gen": gen, "bytes": len(raw), "crc32": zlib.crc32(raw)}
    return [
        *((part_key(key, gen, i), _PART_FIRST_BYTE + piece) for i, piece in enumerate(pieces)),
        (key, bytes(_JSON.dumps(manifest))),
    ]


def manifest_gen(value: Any) -> int | None:
    """The generation of the parts ``value`` names, if it is a manifest (None: it is not)."""
    if isinstance(value, dict) and _PARTS in value:
        return int(value["gen"])
    return None


def read_state(key: str, value: Any, lookup: Callable[[str], Any]) -> Any:
    """The state stored under ``key``: ``value`` itself, or, when it is a manifest, the state
    its parts hold (each part's decoded value from ``lookup``, by store key). ``None`` when a
    part is missing or does not match the manifest: logged, and the detector starts afresh as
    for a state never stored."""
    gen = manifest_gen(value)
    if gen is None:
        return value
    pieces = [lookup(part_key(key, gen, i)) for i in range(int(value[_PARTS]))]
    if all(isinstance(p, bytes) for p in pieces):
        raw = b"".join(pieces)
        if len(raw) == value["bytes"] and zlib.crc32(raw) == value["crc32"]:
            return codecs.loads(STATE_CODEC, raw)
    missing = sum(not isinstance(p, bytes) for p in pieces)
    log.error(
        "detector state key=%s is stored in %d parts, %d of them missing or not those of its "
        "manifest: its detector starts afresh for this key",
        key, len(pieces), missing,
    )  # fmt: skip
    return None
