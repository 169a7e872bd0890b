"""``model_change`` (declared): the provider says a different model served the same name."""

from __future__ import annotations

from typing import ClassVar

from slowleak.models import Alert, InteractionEvent
from slowleak.streams.core.detectors.base import KeyedDetector, StateStore, alert_id

__all__ = ["DeclaredModelChange"]

#: (event field, state key of the last value seen), precomputed for the per-event path.
_FIELDS = (
    ("response_model", "last_response_model"),
    ("system_fingerprint", "last_system_fingerprint"),
)


class DeclaredModelChange(KeyedDetector):
    """Fire at the first event whose ``response_model`` or ``system_fingerprint`` is new.

    Per key app x env x variant x model. Providers serve one model name from several backends
    at once (OpenAI's ``system_fingerprint`` alternates between a few values), so a value that
    was seen before under the key is not a change; only a value never seen under it is, and the
    alert names the value it replaced (the last one seen) and when that was first seen. At most
    ``max_known`` values are remembered per field (the one least recently switched to is
    forgotten). The common case, the same value as the previous call, costs two comparisons.

    >>> from datetime import UTC, datetime
    >>> from slowleak.models import InteractionEvent
    >>> detector = DeclaredModelChange()
    >>> def call(i, fp):
    ...     ts = datetime(2026, 11, 25, 2, 0, i, tzinfo=UTC)
    ...     return InteractionEvent(event_id=f"e{i}", ts=ts, app="bot",
    ...         model="gpt-4o", input_tokens=1, output_tokens=1, latency_ms=1.0, status="ok",
    ...         system_fingerprint=fp)
    >>> for i, fp in enumerate(["fp_a", "fp_b", "fp_a", "fp_c"]):
    ...     for alert in detector.on_interaction(call(i, fp)):
    ...         print(i, alert.details["old"], "->", alert.details["new"])
    1 fp_a -> fp_b
    3 fp_a -> fp_c
    """

    name: ClassVar[str] = "model_change"
    version: ClassVar[int] = 1

    def __init__(self, *, store: StateStore | None = None, max_known: int = 16) -> None:
        if max_known < 1:
            raise ValueError("max_known must be at least 1")
        self.max_known = max_known
        super().__init__(store=store)

    def on_interaction(self, event: InteractionEvent) -> list[Alert]:
        if event.response_model is None and event.system_fingerprint is None:
            return []
        key = f"{event.app}|{event.env}|{event.variant}|{event.model}"
        state = self.state(key)
        changes: list[tuple[str, str, str, str]] = []
        for field, last_key in _FIELDS:
            new = getattr(event, field)
            if new is None:
                continue
            last = state.get(last_key)
            if new == last:  # the common case: nothing changed
                continue
            # known: value -> [first seen (event time), last switched to (event time)].
            known: dict[str, list[str]] = state.setdefault(field, {})
            ts = event.ts.isoformat()
            state[last_key] = new
            self.touch(key)
            if new in known:
                known[new][1] = ts
                continue
            if last is not None:
                changes.append((field, last, known[last][0], new))
            known[new] = [ts, ts]
            if len(known) > self.max_known:
                del known[min(known, key=lambda v: known[v][1])]
        # A snapshot swap usually changes both at once: one alert names both.
        return [self._alert(event, changes)] if changes else []

    def _alert(self, event: InteractionEvent, changes: list[tuple[str, str, str, str]]) -> Alert:
        field, old, old_since, new = changes[0]
        what = " and ".join(
            f"{'served by' if f == 'response_model' else 'fingerprint'} {o} -> {n}"
            for f, o, _, n in changes
        )
        also = {f"{f}_old": o for f, o, _, _ in changes[1:]} | {
            f"{f}_new": n for f, _, _, n in changes[1:]
        }
        return Alert(
            alert_id=alert_id(
                self.name, event.app, event.env, event.variant, event.model, field, new
            ),
            kind=self.name,
            severity="warning",
            status="firing",
            ts=event.ts,
            event_id=event.event_id,
            app=event.app,
            model=event.model,
            labels={"env": event.env, "variant": event.variant, "field": field},
            summary=(
                f"{event.app} asks for {event.model} and the provider changed what answers: "
                f"{what} at {event.ts:%Y-%m-%d %H:%M:%S %Z} "
                f"(event {event.event_id}); {old} had been seen since {old_since[:19]}"
            ),
            details={
                "field": field,
                "old": old,
                "new": new,
                "old_first_seen": old_since,
                "env": event.env,
                "variant": event.variant,
                "provider": event.provider,
                "auto_resolve": True,
                **also,
            },
        )
