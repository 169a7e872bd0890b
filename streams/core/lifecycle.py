"""Alert lifecycle: detectors decide, this decides what on-call is told, and when.

A detector's ``Alert`` is a decision about a condition, identified by its ``alert_id`` (the
condition: e.g. "median latency of support-bot/gpt-4o", or one outage incident). The lifecycle
turns decisions into notifications (the ``Alert``s published to ``slowleak.alerts``):

- the first ``firing`` of a condition notifies at once (``sequence`` 0, or the next number if the
  condition fired before and was resolved);
- further ``firing`` decisions while it is open are folded into it, except a higher severity,
  which notifies again (an escalation); while it stays open it is repeated every
  ``repeat_interval_s`` of event time, so a forgotten incident is not silent;
- a ``resolved`` decision closes it after ``hold_down_s`` without a new ``firing`` (a condition
  that comes back within the hold-down never looked resolved to anyone); each time that happens
  the condition has flapped, and its hold-down doubles (up to 8x) until it stays quiet for
  ``flap_memory_s``;
- a decision with ``details["auto_resolve"]`` (one-off facts such as a declared model change) is
  resolved ``auto_resolve_s`` after it fired.

Time is event time, per app: the clock of an app is the latest event time seen for it, so a
replay of the same traffic decides the same notifications. State is plain data per app (the key
of the stream's partitions), kept with the detectors' states, so a restarted worker neither
re-pages an open alert nor forgets it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol

from slowleak.models import Alert
from slowleak.streams.core.detectors.base import ObjectDetector, State, StateStore

__all__ = ["AlertLifecycle", "LifecyclePolicy", "lifecycle_policy"]

_SEVERITY = {"info": 0, "warning": 1, "critical": 2}
#: Closed conditions are remembered this long (for numbering and flap damping).
CLOSED_MEMORY_S = 86_400
#: Conditions remembered per app, at most.
MAX_CONDITIONS = 512


@dataclass(frozen=True, slots=True)
class LifecyclePolicy:
    repeat_interval_s: float = 4 * 3600.0
    hold_down_s: float = 600.0
    flap_memory_s: float = 3600.0
    auto_resolve_s: float = 3600.0

    def __post_init__(self) -> None:
        for name in ("repeat_interval_s", "hold_down_s", "flap_memory_s", "auto_resolve_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")


class _LifecycleSettings(Protocol):
    @property
    def alert_repeat_interval_s(self) -> float: ...
    @property
    def alert_hold_down_s(self) -> float: ...
    @property
    def alert_auto_resolve_s(self) -> float: ...


def lifecycle_policy(settings: _LifecycleSettings) -> LifecyclePolicy:
    """The policy configured in :class:`~slowleak.models.Settings`."""
    return LifecyclePolicy(
        repeat_interval_s=settings.alert_repeat_interval_s,
        hold_down_s=settings.alert_hold_down_s,
        auto_resolve_s=settings.alert_auto_resolve_s,
    )


def _ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def _age_rank(entry: dict[str, Any]) -> tuple[bool, int]:
    """Closed before open, then oldest notification first: what to forget first."""
    return bool(entry["open"]), int(entry["notified_at"])


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


class _App:
    """Conditions of one app: alert_id -> entry (a dict of plain data), and the app's clock."""

    __slots__ = ("clock", "conditions")

    def __init__(self, clock: int = 0, conditions: dict[str, dict[str, Any]] | None = None) -> None:
        self.clock = clock
        self.conditions = conditions if conditions is not None else {}


class AlertLifecycle(ObjectDetector[_App]):
    """Decisions in, notifications out; per app state. See the module docstring."""

    name: ClassVar[str] = "lifecycle"
    version: ClassVar[int] = 1

    def __init__(
        self, *, store: StateStore | None = None, policy: LifecyclePolicy | None = None
    ) -> None:
        self.policy = policy if policy is not None else LifecyclePolicy()
        super().__init__(store=store)

    def new_object(self, key: str) -> _App:
        return _App()

    def load(self, key: str, state: State) -> _App:
        return _App(state["clock"], state["conditions"])

    def dump(self, obj: _App) -> State:
        return {"clock": obj.clock, "conditions": obj.conditions}

    def process(self, decisions: Sequence[Alert], clocks: dict[str, datetime]) -> list[Alert]:
        """The notifications for a chunk: its detectors' ``decisions`` (in order) and the latest
        event time of each app in the chunk (``clocks``), which runs the timers."""
        out: list[Alert] = []
        for alert in decisions:
            app = self.obj(alert.app)
            app.clock = max(app.clock, _ms(alert.ts))
            self.touch(alert.app)
            out.extend(self._decide(app, alert))
        for name, ts in clocks.items():
            app = self.obj(name)
            if not app.conditions:
                continue
            now = max(app.clock, _ms(ts))
            due = list(self._due(app, now))
            if due or now != app.clock:
                app.clock = now
                self.touch(name)
            out.extend(due)
        return out

    # --- decisions -------------------------------------------------------------------------

    def _decide(self, app: _App, alert: Alert) -> Iterable[Alert]:
        entry = app.conditions.get(alert.alert_id)
        ts = _ms(alert.ts)
        if alert.status == "firing":
            if entry is None or not entry["open"]:
                yield self._open(app, alert, entry, ts)
                return
            if entry["resolve_at"] is not None and not entry["auto"]:
                # It came back within the hold-down: nobody was told it resolved; a flap.
                entry["resolve_at"] = None
                entry["flaps"] = [t for t in entry["flaps"] if ts - t < self._flap_ms()] + [ts]
            entry["last"] = alert.model_dump(mode="json")
            if _SEVERITY[alert.severity] > _SEVERITY[entry["severity"]]:
                entry["severity"] = alert.severity
                yield self._notify(entry, alert, ts, repeat="escalated")
            return
        if entry is None or not entry["open"]:
            return  # resolving something never opened (or already closed): nothing to say
        entry["last"] = alert.model_dump(mode="json")
        if entry["resolve_at"] is None or entry["auto"]:
            entry["auto"] = False
            entry["resolve_at"] = ts + self._hold_down_ms(entry, ts)

    def _open(self, app: _App, alert: Alert, entry: dict[str, Any] | None, ts: int) -> Alert:
        auto = bool(alert.details.get("auto_resolve"))
        policy = self.policy
        new = {
            "open": True,
            "sequence": -1 if entry is None else entry["sequence"],
            "starts_at": ts,
            "severity": alert.severity,
            "notified_at": ts,
            "resolve_at": ts + int(policy.auto_resolve_s * 1000) if auto else None,
            "auto": auto,
            "flaps": [] if entry is None else entry["flaps"],
            "last": alert.model_dump(mode="json"),
        }
        app.conditions[alert.alert_id] = new
        self._forget_old(app, ts)
        return self._notify(new, alert, ts)

    def _notify(
        self, entry: dict[str, Any], alert: Alert, ts: int, *, repeat: str | None = None
    ) -> Alert:
        """The notification of one transition; ``repeat`` says why an open one is re-sent."""
        entry["sequence"] += 1
        entry["notified_at"] = ts
        details = dict(alert.details)
        if repeat is not None:
            details["repeat"] = repeat
        return alert.model_copy(
            update={
                "sequence": entry["sequence"],
                "starts_at": _dt(entry["starts_at"]),
                "severity": entry["severity"] if alert.status == "firing" else alert.severity,
                "details": details,
            }
        )

    # --- timers ----------------------------------------------------------------------------

    def _due(self, app: _App, now: int) -> Iterable[Alert]:
        repeat_ms = int(self.policy.repeat_interval_s * 1000)
        for entry in app.conditions.values():
            if not entry["open"]:
                continue
            last = Alert.model_validate(entry["last"], strict=False)  # from JSON-mode data
            if entry["resolve_at"] is not None and now >= entry["resolve_at"]:
                entry["open"] = False
                ends = entry["resolve_at"]
                resolved = last.model_copy(
                    update={"status": "resolved", "ends_at": _dt(ends), "ts": _dt(ends)}
                )
                if entry["auto"] and last.status == "firing":
                    minutes = round(self.policy.auto_resolve_s / 60)
                    summary = f"closed {minutes} min after it fired (a one-off): {last.summary}"
                    resolved = resolved.model_copy(update={"summary": summary[:2000]})
                yield self._notify(entry, resolved, ends)
            elif entry["resolve_at"] is None and now - entry["notified_at"] >= repeat_ms:
                again = last.model_copy(update={"ts": _dt(now)})
                yield self._notify(entry, again, now, repeat="still firing")

    def _hold_down_ms(self, entry: dict[str, Any], ts: int) -> int:
        flaps = [t for t in entry["flaps"] if ts - t < self._flap_ms()]
        entry["flaps"] = flaps
        return int(self.policy.hold_down_s * 1000 * 2 ** min(len(flaps), 3))

    def _flap_ms(self) -> int:
        return int(self.policy.flap_memory_s * 1000)

    def _forget_old(self, app: _App, now: int) -> None:
        conditions = app.conditions
        stale = [
            k
            for k, e in conditions.items()
            if not e["open"]
            and now - (e["resolve_at"] or e["notified_at"]) > CLOSED_MEMORY_S * 1000
        ]
        for k in stale:
            del conditions[k]
        while len(conditions) > MAX_CONDITIONS:  # drop the oldest closed ones first
            oldest = min(
                conditions, key=lambda k: (conditions[k]["open"], conditions[k]["notified_at"])
            )
            del conditions[oldest]
