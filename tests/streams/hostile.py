"""Hostile input for the ingest path: valid events, and mutations of them that break the contract.

Every :class:`Message` says what the contract must do with it: accept it (one row), or reject it
with a reason that names ``field`` (``None``: the message as a whole is wrong, such as not UTF-8,
not JSON, or too large, and no field can be named). A retrying producer's duplicate is the same
bytes sent again: accepted, and counted once downstream (``events`` is a ReplacingMergeTree whose
sorting key ends with ``event_id``).

Seeded (a private ``random.Random``): the same seed gives the same messages, so a failure in the
fuzz tests reproduces.
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from slowleak.models.events import TS_MAX, TS_MIN, UINT32_MAX

__all__ = ["BAD_KINDS", "NOW", "Hostile", "Message", "display_name"]

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
REQUIRED = (
    "event_id",
    "ts",
    "app",
    "model",
    "input_tokens",
    "output_tokens",
    "latency_ms",
    "status",
)
TOKEN_FIELDS = ("input_tokens", "output_tokens", "cached_input_tokens", "reasoning_tokens")
NAME_FIELDS = ("app", "model", "env", "variant", "tenant", "user_id", "intent", "provider")
OPTIONAL_NAMES = ("tenant", "user_id", "session_id", "trace_id", "intent", "provider")
#: Strings that stress encoders: NUL, escapes, emoji, right-to-left, combining marks, CJK.
AWKWARD = (
    "plain",
    "nul\x00inside",
    'quote " and \\ backslash',
    "emoji \U0001f600\U0001f4a5",
    "rtl \u202eevil\u202c",
    "e\u0301 combining",
    "\u4e2d\u6587",
    "line\nbreak\ttab",
    "'; DROP TABLE events; --",
    "\u2028\u2029 separators",
)
WRONG_TYPES: dict[str, tuple[Any, ...]] = {
    "int": ("12", 1.5, True, [], {"a": 1}, None),
    "str": (12, 1.5, True, [], {"a": 1}),
    "float": ("1.0", True, [], {"a": 1}),
    "bool": ("true", 1, 0, [], {}),
    "ts": (1.7e9, True, [], {}, "", "now", "yesterday"),
    "dict": ([], "a=b", 1, True),
}
FIELD_TYPES = {
    "event_id": "str",
    "app": "str",
    "model": "str",
    "env": "str",
    "variant": "str",
    "input_tokens": "int",
    "output_tokens": "int",
    "latency_ms": "float",
    "ts": "ts",
    "outcome": "bool",
    "cost_usd": "float",
    "attributes": "dict",
    "tenant": "str",
    "input_text": "str",
}
UNKNOWN_FIELDS = ("input_token", "Event_ID", "__proto__", "", " ", "a.b", "caf\u00e9", "x" * 300)


def display_name(name: str) -> str:
    """How a reason shows a field name (decode's rule): plain names as is, others quoted."""
    plain = 0 < len(name) <= 64 and all(
        c in string.ascii_letters + string.digits + "_-" for c in name
    )
    if plain:
        return name
    quoted = json.dumps(name[:64], ensure_ascii=False)
    return quoted if len(name) <= 64 else f"{quoted}..."


@dataclass(frozen=True, slots=True)
class Message:
    """One message value and what the contract must do with it."""

    kind: str
    raw: bytes | None
    ok: bool
    #: For a rejected message: the field its reason must name; None for a message-level error.
    field: str | None = None
    #: For an accepted one: its event_id.
    event_id: str | None = None


Mutation = Callable[["Hostile", dict[str, Any]], tuple[bytes | None, str | None]]


class Hostile:
    """Valid events and hostile mutations of them, seeded.

    ``now`` and ``future_tolerance_s`` are the processor's clock and tolerance: valid events
    are at most ``future_tolerance_s`` ahead of ``now``, and ``ts_future`` goes beyond it.
    ``huge`` allows the 10 MB messages (``oversize``), which cost time to build.
    """

    def __init__(
        self,
        *,
        seed: int,
        now: datetime = NOW,
        future_tolerance_s: float = 300.0,
        max_message_bytes: int = 1_048_576,
        huge: bool = True,
        id_prefix: str = "fz",
        future_margins_s: tuple[float, ...] = (1.5, 60.0, 86_400.0 * 365),
        past_s: float = 86_400.0 * 30,
    ) -> None:
        self.seed = seed
        self.now = now
        self.future_tolerance_s = future_tolerance_s
        self.max_message_bytes = max_message_bytes
        self.huge = huge
        self.id_prefix = id_prefix
        #: How far beyond the tolerance ``ts_future`` goes (more than a test lasts, for a worker
        #: reading the real clock).
        self.future_margins_s = future_margins_s
        #: Valid events are spread over this many seconds before ``now`` (out of order).
        self.past_s = past_s
        self._rng = random.Random(seed)
        self._n = 0
        self._sent: list[Message] = []
        #: Costly kinds come once per so many messages of a stream; the others at random.
        self._rare = {"oversize": 20_000, "long_text": 2_000}
        if not huge:
            del self._rare["oversize"]
        self._kinds = [k for k in BAD_KINDS if k not in ("oversize", "long_text")]

    # --- valid events -------------------------------------------------------------------------

    def event(self) -> dict[str, Any]:
        """A valid event as a dict, with a new event_id."""
        rng = self._rng
        self._n += 1
        ahead = self.future_tolerance_s - 5.0
        ts = self.now + timedelta(seconds=rng.uniform(-self.past_s, max(ahead, 0.0)))
        event: dict[str, Any] = {
            "event_id": f"{self.id_prefix}-{self.seed}-{self._n}",
            "ts": ts.isoformat(timespec="milliseconds"),
            "app": rng.choice(("support-bot", "search", "caf\u00e9-bot", "\u4e2d\u6587")),
            "model": rng.choice(("gpt-4o", "claude", "m" * 256)),
            "input_tokens": rng.choice((0, 1, rng.randrange(UINT32_MAX), UINT32_MAX)),
            "output_tokens": rng.randrange(10_000),
            "latency_ms": rng.choice((0.0, rng.uniform(0, 60_000.0), 1e300)),
            "status": rng.choice(("ok", "error", "timeout")),
        }
        if rng.random() < 0.5:
            event["input_text"] = rng.choice(AWKWARD) * rng.randrange(1, 20)
            event["output_text"] = rng.choice(AWKWARD)
        if rng.random() < 0.5:
            event["attributes"] = {rng.choice(AWKWARD)[:30]: rng.choice(AWKWARD) for _ in range(3)}
        if rng.random() < 0.3:
            event["tenant"] = None
            event["score"] = rng.choice((0.0, 1.0, rng.random()))
            event["outcome"] = rng.random() < 0.5
            event["cost_usd"] = rng.uniform(0, 10)
            event["cached_input_tokens"] = rng.randrange(1000)
            event["type"] = "interaction"
            event["schema_version"] = 1
        return event

    def good(self) -> Message:
        event = self.event()
        raw = (
            orjson.dumps(event)
            if self._rng.random() < 0.8
            else json.dumps(event, indent=2, ensure_ascii=True).encode()
        )
        return Message("good", raw, ok=True, event_id=event["event_id"])

    # --- hostile ------------------------------------------------------------------------------

    def bad(self, kind: str | None = None) -> Message:
        """A message that must be rejected; ``kind`` from :data:`BAD_KINDS` (random if None)."""
        kind = kind or self._rng.choice(self._kinds)  # rare kinds only when asked for
        raw, field = BAD_KINDS[kind](self, self.event())
        return Message(kind, raw, ok=False, field=field)

    def stream(
        self, n: int, *, bad_share: float = 0.5, duplicate_share: float = 0.02
    ) -> Iterator[Message]:
        """``n`` messages: good ones, hostile ones, and re-sends of earlier good ones."""
        rng = self._rng
        for i in range(1, n + 1):
            roll = rng.random()
            rare = [kind for kind, every in self._rare.items() if i % every == 0]
            if rare:
                yield self.bad(rare[0])
            elif roll < duplicate_share and self._sent:
                again = rng.choice(self._sent)
                yield Message("duplicate", again.raw, ok=True, event_id=again.event_id)
            elif roll < duplicate_share + bad_share:
                yield self.bad()
            else:
                message = self.good()
                if len(self._sent) < 10_000:
                    self._sent.append(message)
                yield message

    # --- helpers for mutations ----------------------------------------------------------------

    def pick(self, options: tuple[Any, ...]) -> Any:
        return self._rng.choice(options)

    def dumps(self, event: dict[str, Any]) -> bytes:
        return orjson.dumps(event)


def _set(field: str, value: Any) -> Mutation:
    def mutate(h: Hostile, e: dict[str, Any]) -> tuple[bytes | None, str | None]:
        e[field] = value
        return h.dumps(e), field

    return mutate


def _negative_tokens(h: Hostile, e: dict[str, Any]) -> tuple[bytes | None, str | None]:
    field = h.pick(TOKEN_FIELDS)
    e[field] = -h.pick((1, 2**31, 2**63))
    return h.dumps(e), field


def _tokens_overflow(h: Hostile, e: dict[str, Any]) -> tuple[bytes | None, str | None]:
    field = h.pick(TOKEN_FIELDS)
    raw = h.dumps({**e, field: 0}).replace(
        f'"{field}":0'.encode(), f'"{field}":{h.pick((UINT32_MAX + 1, 2**64, 10**40))}'.encode()
    )
    return raw, field


def _non_finite(h: Hostile, e: dict[str, Any]) -> tuple[bytes | None, str | None]:
    field = h.pick(("latency_ms", "cost_usd", "score"))
    literal = h.pick((b"NaN", b"Infinity", b"-Infinity"))
    raw = h.dumps({**e, field: 0.5}).replace(
        f'"{field}":0.5'.encode(), f'"{field}":'.encode() + literal
    )
    return raw, field


def _ts(value: str) -> Mutation:
    return _set("ts", value)


def _ts_future(h: Hostile, e: dict[str, Any]) -> tuple[bytes | None, str | None]:
    ahead = h.future_tolerance_s + h.pick(h.future_margins_s)
    e["ts"] = (h.now + timedelta(seconds=ahead)).isoformat()
    return h.dumps(e), "ts"


def _wrong_type(h: Hostile, e: dict[str, Any]) -> tuple[bytes | None, str | None]:
    field = h.pick(tuple(FIELD_TYPES))
    e[field] = h.pick(WRONG_TYPES[FIELD_TYPES[field]])
    return h.dumps(e), field


def _null_required(h: Hostile, e: dict[str, Any]) -> tuple[bytes | None, str | None]:
    field = h.pick((*REQUIRED, "env", "variant", "attributes", "type"))
    e[field] = None
    return h.dumps(e), field


def _missing_required(h: Hostile, e: dict[str, Any]) -> tuple[bytes | None, str | None]:
    field = h.pick(REQUIRED)
    del e[field]
    return h.dumps(e), field


def _unknown_field(h: Hostile, e: dict[str, Any]) -> tuple[bytes | None, str | None]:
    field = h.pick(UNKNOWN_FIELDS)
    e[field] = h.pick((1, "x", None, {}))
    return h.dumps(e), field


def _name_length(h: Hostile, e: dict[str, Any]) -> tuple[bytes | None, str | None]:
    field = h.pick(NAME_FIELDS)
    e[field] = h.pick(("", "n" * 257, "\U0001f600" * 257))
    return h.dumps(e), field


def _long_text(h: Hostile, e: dict[str, Any]) -> tuple[bytes | None, str | None]:
    # Over the model's 1,000,000 characters but under max_message_bytes: the field is named.
    field = h.pick(("input_text", "output_text"))
    e[field] = "x" * 1_000_001
    return h.dumps(e), field


def _oversize(h: Hostile, e: dict[str, Any]) -> tuple[bytes | None, str | None]:
    e["input_text"] = "y" * 10_000_000
    return h.dumps(e), None


def _duplicate_key(h: Hostile, e: dict[str, Any]) -> tuple[bytes | None, str | None]:
    # The same key twice: the last one counts, and here it has the wrong type.
    return h.dumps(e)[:-1] + b',"event_id":5}', "event_id"


def _attributes(h: Hostile, e: dict[str, Any]) -> tuple[bytes | None, str | None]:
    e["attributes"] = h.pick(({"k": 1}, {"k": None}, {"": "v"}, {"k": {"nested": "v"}}))
    return h.dumps(e), "attributes"


def _deep_nesting(h: Hostile, e: dict[str, Any]) -> tuple[bytes | None, str | None]:
    depth = h.pick((300, 5_000, 100_000))
    if h.pick((True, False)):
        return b"[" * depth + b"]" * depth, None
    return h.dumps(e)[:-1] + b',"attributes":' + b'{"k":' * depth + b"1" + b"}" * (depth + 1), None


def _invalid_utf8(h: Hostile, e: dict[str, Any]) -> tuple[bytes | None, str | None]:
    e["app"] = "MARK"
    bad = h.pick((b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80"))
    return h.dumps(e).replace(b"MARK", b"app" + bad), None


def _lone_surrogate(h: Hostile, e: dict[str, Any]) -> tuple[bytes | None, str | None]:
    e["app"] = "MARK"
    return h.dumps(e).replace(b"MARK", b"\\ud800"), None


def _broken_json(h: Hostile, e: dict[str, Any]) -> tuple[bytes | None, str | None]:
    raw = h.dumps(e)
    return h.pick(
        (raw[: len(raw) // 2], raw + b"x", b"\xef\xbb\xbf" + raw, raw.replace(b":", b"=", 1))
    ), None


def _not_an_object(h: Hostile, e: dict[str, Any]) -> tuple[bytes | None, str | None]:
    return h.pick((b"[]", b'"event"', b"42", b"null", b"true", b"", b"   ", b"[{}]", None)), None


BAD_KINDS: dict[str, Mutation] = {
    "negative_tokens": _negative_tokens,
    "tokens_overflow": _tokens_overflow,
    "float_tokens": _set("input_tokens", 1.5),
    "bool_tokens": _set("output_tokens", True),
    "non_finite": _non_finite,
    "negative_latency": _set("latency_ms", -0.001),
    "score_range": _set("score", 1.5),
    "ts_9999": _ts("9999-12-31T23:59:59Z"),
    "ts_1970": _ts("1970-01-01T00:00:00Z"),
    "ts_before_2000": _ts("1999-12-31T23:59:59.999+00:00"),
    "ts_2100": _ts("2100-01-01T00:00:00Z"),
    "ts_naive": _ts("2026-11-25T10:00:00"),
    "ts_garbage": _ts("25/11/2026 10:00"),
    "ts_future": _ts_future,
    "wrong_type": _wrong_type,
    "null_required": _null_required,
    "missing_required": _missing_required,
    "unknown_field": _unknown_field,
    "name_length": _name_length,
    "long_text": _long_text,
    "oversize": _oversize,
    "status": _set("status", "OK"),
    "type": _set("type", "feedback"),
    "schema_version": _set("schema_version", 2),
    "outcome_string": _set("outcome", "true"),
    "duplicate_key": _duplicate_key,
    "attributes": _attributes,
    "deep_nesting": _deep_nesting,
    "invalid_utf8": _invalid_utf8,
    "lone_surrogate": _lone_surrogate,
    "broken_json": _broken_json,
    "not_an_object": _not_an_object,
}

assert TS_MIN.year == 2000 and TS_MAX.year == 2100, "ts_* mutations assume these bounds"
