"""``guardrail`` and ``guardrail_rate``: guardrail findings per call, and their rate per app.

Every call with text goes through the :class:`~slowleak.streams.core.guardrails.Scanner`
(prompt injection on the input; PII, secrets, the app's configured secrets and off-task answers
on the output). Each finding is a row of ClickHouse ``guardrail_findings`` (masked evidence, never
the raw value). Two kinds of alert:

- ``guardrail``, at once: a call whose output leaks a secret (``secret_leak``) or high-severity
  PII (``pii_leak`` of severity ``high`` or ``critical``), or answers off task (program code, an
  intent not allowed) to an input flagged as a prompt injection: the model followed it
  (``off_task`` of severity ``critical``). One alert per app, detector and kind
  while it lasts: later leaks of the same kind fold into it (the alert lifecycle), and it closes
  by itself after the auto-resolve time.
- ``guardrail_rate``: per app and detector, the share of calls with a finding rose against the
  app's own baseline (an attack campaign, a prompt change that leaks). Names of people
  (``pii_leak`` of kind ``person``) have a rate of their own: they are in many ordinary answers
  (greetings, role-plays), and counted with e-mail addresses and card numbers they would hide a
  rise of those. A one-sided Bernoulli
  CUSUM bank (:class:`~slowleak.streams.core.stats.bernoulli.BernoulliDrift`, ``"up"``,
  calibrated to about one false alarm per 1,000,000 calls) over a warm-up of
  :data:`WARMUP` calls, with a floor of 1% for the reference rate (findings are rare: what is
  caught is the rate rising well above 1%). After it fires, the new level becomes the baseline.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from slowleak.models import Alert, InteractionEvent
from slowleak.streams.core.detectors.base import ObjectDetector, State, StateStore, alert_id
from slowleak.streams.core.guardrails import (
    GUARDRAIL_FINDING_COLUMNS,
    AppProfile,
    Finding,
    Scanner,
    finding_row,
)
from slowleak.streams.core.rows import Row
from slowleak.streams.core.stats.bernoulli import BernoulliDrift

__all__ = ["FINDINGS_TABLE", "RATES", "WARMUP", "GuardrailMonitor"]

FINDINGS_TABLE = "guardrail_findings"
#: Calls of an app that set its baseline finding rate, per detector.
WARMUP = 2_000
#: The reference rate the bank is built for is at least this (see ``BernoulliDrift``).
RATE_FLOOR = 0.01
#: Findings that alert at once.
_AT_ONCE = {
    "secret_leak": {"low", "medium", "high", "critical"},
    "pii_leak": {"high", "critical"},
    # Only an answer off task to an input flagged as an injection is critical (``FOLLOWED``).
    "off_task": {"critical"},
}
_SEVERITY = {"low": "info", "medium": "warning", "high": "critical", "critical": "critical"}
#: The rates watched per app: a call counts for one when any of its findings matches.
RATES: dict[str, Callable[[Finding], bool]] = {
    "prompt_injection": lambda f: f.detector == "prompt_injection",
    "pii_leak": lambda f: f.detector == "pii_leak" and f.kind != "person",
    "pii_leak_person": lambda f: f.detector == "pii_leak" and f.kind == "person",
    "secret_leak": lambda f: f.detector == "secret_leak",
    "off_task": lambda f: f.detector == "off_task",
}
#: How an at-once alert names an ``off_task`` finding (one that followed an injection).
_OFF_TASK = {"code": "program code", "intent": "an intent its profile does not allow"}
#: A rate's detector and, for a rate of one kind of finding, that kind.
_RATE_LABELS = {"pii_leak_person": ("pii_leak", "person")}


class _App:
    """One app: a rate detector per watched rate, and calls since its last alert."""

    __slots__ = ("banks", "counts")

    def __init__(self) -> None:
        self.banks = {name: _new_bank() for name in RATES}
        self.counts = {name: [0, 0] for name in RATES}  # [calls, calls with a finding]


def _new_bank() -> BernoulliDrift:
    return BernoulliDrift("up", warmup=WARMUP, min_reference=RATE_FLOOR)


class GuardrailMonitor(ObjectDetector[_App]):
    """Scan each call; findings to :data:`FINDINGS_TABLE` (via :meth:`write_rows`); alerts
    ``guardrail`` (at once) and ``guardrail_rate`` (per app and detector, against its baseline).
    State per app: the rate detectors. Only calls with an input or output text count."""

    name: ClassVar[str] = "guardrail"
    #: 2: people's names have a rate of their own (a state of version 1 starts a new baseline).
    version: ClassVar[int] = 2

    def __init__(
        self,
        *,
        store: StateStore | None = None,
        profiles: Mapping[str, AppProfile] | None = None,
        scanner: Scanner | None = None,
    ) -> None:
        self.profiles = dict(profiles or {})
        self.scanner = Scanner(self.profiles) if scanner is None else scanner
        self.findings = 0
        self.scanned = 0
        self._rows: list[Row] = []
        super().__init__(store=store)

    def new_object(self, key: str) -> _App:
        return _App()

    def load(self, key: str, state: State) -> _App:
        app = _App()
        for name, bank in state["banks"].items():
            app.banks[name] = BernoulliDrift.from_state(bank)
        app.counts = {name: list(c) for name, c in state["counts"].items()}
        return app

    def dump(self, obj: _App) -> State:
        return {
            "banks": {name: bank.to_state() for name, bank in obj.banks.items()},
            "counts": obj.counts,
        }

    def on_interactions(self, events: Sequence[InteractionEvent]) -> list[Alert]:
        alerts: list[Alert] = []
        scan = self.scanner.scan
        for event in events:
            if not (event.input_text or event.output_text):
                continue
            self.scanned += 1
            findings = scan(event)
            if findings:
                self.findings += len(findings)
                self._rows.extend(finding_row(event, f) for f in findings)
                alerts += self._at_once(event, findings)
            app = self.obj(event.app)
            for name, bank in app.banks.items():
                hit = any(map(RATES[name], findings))
                counts = app.counts[name]
                counts[0] += 1
                counts[1] += hit
                if bank.update(hit):
                    alerts.append(self._rate_alert(event, name, bank, counts))
                    app.counts[name] = [0, 0]
            self.touch(event.app)
        return alerts

    def write_rows(self, out: Any) -> None:
        """The processor's hook: the findings since the last call, for ``guardrail_findings``."""
        if self._rows:
            out.add_rows(FINDINGS_TABLE, GUARDRAIL_FINDING_COLUMNS, self._rows)
            self._rows = []

    def counters(self) -> dict[str, Any]:
        return {"apps": len(self._objects), "scanned": self.scanned, "findings": self.findings}

    def _at_once(self, event: InteractionEvent, findings: list[Finding]) -> list[Alert]:
        out = []
        for f in findings:
            if f.severity not in _AT_ONCE.get(f.detector, ()):
                continue
            what = f"a {f.kind.replace('_', ' ')}"
            if f.detector == "off_task":  # "program code", "an intent its profile does not allow"
                what = _OFF_TASK.get(f.kind, f"an off-task {f.kind}")
            out.append(
                Alert(
                    alert_id=alert_id(self.name, event.app, event.env, f.detector, f.kind),
                    kind="guardrail",
                    severity=_SEVERITY[f.severity],  # type: ignore[arg-type]
                    status="firing",
                    ts=event.ts,
                    event_id=event.event_id,
                    app=event.app,
                    model=event.model,
                    labels={"env": event.env, "detector": f.detector, "finding": f.kind},
                    summary=(
                        f"{event.app} ({event.model}) answered with {what} in "
                        f"{f.field.replace('_', ' ')} ({f.detector}, score {f.score:.2f}): "
                        f"{f.evidence} (event {event.event_id})"
                    )[:2000],
                    details={
                        "env": event.env,
                        "detector": f.detector,
                        "finding": f.kind,
                        "score": f.score,
                        "severity": f.severity,
                        "field": f.field,
                        "spans": [list(s) for s in f.spans],
                        "evidence": f.evidence,
                        "auto_resolve": True,
                    },
                )
            )
        return out

    def _rate_alert(
        self, event: InteractionEvent, rate: str, bank: BernoulliDrift, counts: list[int]
    ) -> Alert:
        detector, finding = _RATE_LABELS.get(rate, (rate, ""))
        what = f"{detector} findings ({finding})" if finding else f"{detector} findings"
        labels = {"env": event.env, "detector": detector} | (
            {"finding": finding} if finding else {}
        )
        reference = bank.measured or 0.0
        since = bank.n - (bank.change_index or 0)
        estimate = bank.estimate or 0.0
        return Alert(
            alert_id=alert_id("guardrail_rate", event.app, event.env, rate, str(bank.n)),
            kind="guardrail_rate",
            severity="critical" if detector in ("secret_leak", "prompt_injection") else "warning",
            status="firing",
            ts=event.ts,
            event_id=event.event_id,
            app=event.app,
            model=event.model,
            labels=labels,
            summary=(
                f"{what} on {event.app} rose from {reference:.1%} of calls to about "
                f"{estimate:.1%} over the last {since:,} calls ({counts[1]:,} of {counts[0]:,} "
                "calls flagged since the baseline was set): see guardrail_findings"
            ),
            details={
                "env": event.env,
                "detector": detector,
                **({"finding": finding} if finding else {}),
                "reference": reference,
                "estimate": estimate,
                "since_calls": since,
                "calls": counts[0],
                "flagged": counts[1],
                "auto_resolve": True,
            },
        )
