"""``slowleak challenge``: replay recorded production calls through a challenger.

- :mod:`.sampling`: a seeded sample of ClickHouse ``events`` for an app, stratified by intent;
- :mod:`.challengers`: what a challenger is (a ``module:function`` callable) and its result;
- :mod:`.openai_compat` and :mod:`.fake`: an OpenAI-compatible HTTP adapter and a deterministic
  fake model;
- :mod:`.evaluators`: exact match, regex, JSON Schema, or a team's own scorer;
- :mod:`.runner`: concurrency, rate limit, spend cap, progress, and the events it publishes;
- :mod:`.compare`: the comparison table ``slowleak compare`` prints.

The comparison itself is the pure detector
:class:`~slowleak.streams.core.detectors.challenger.ChallengerComparison`.
"""

from slowleak.streams.challenge.challengers import (
    Challenger,
    ChallengerResult,
    load_callable,
    resolve_challenger,
)
from slowleak.streams.challenge.evaluators import Evaluator, resolve_evaluator
from slowleak.streams.challenge.fake import FakeModel
from slowleak.streams.challenge.runner import ChallengeReport, Progress, run_challenge
from slowleak.streams.challenge.sampling import ChampionCall, SampleSpec, read_sample

__all__ = [
    "ChallengeReport",
    "Challenger",
    "ChallengerResult",
    "ChampionCall",
    "Evaluator",
    "FakeModel",
    "Progress",
    "SampleSpec",
    "load_callable",
    "read_sample",
    "resolve_challenger",
    "resolve_evaluator",
    "run_challenge",
]
