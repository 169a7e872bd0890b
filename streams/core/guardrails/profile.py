"""What an app is for, so that guardrails can tell on-task from off-task output and know which
strings must never appear in an answer.

Profiles are plain data, built from configuration by the caller; nothing here reads files.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AppProfile"]


@dataclass(frozen=True, slots=True)
class AppProfile:
    """One app's declared purpose and its protected strings.

    - ``description``: one or two sentences on what the app does ("Takes food orders for Pizza
      Rapido: menu, prices, delivery times").
    - ``allowed_intents``: the ``intent`` values the app sends; an event with another intent is
      off task. Empty means any.
    - ``code_expected``: whether program code is a normal answer (a code-generation app) or a sign
      that the app was talked into something else (a food-ordering bot emitting Python).
    - ``secrets``: strings that must never appear in output, not even transformed or in part
      (access codes, canary tokens, internal URLs).
    - ``system_prompt``: the app's own instructions; long verbatim runs of it in an output are a
      leak.
    - ``topic_terms``: extra words typical of on-task answers, added to those of ``description``.
    - ``injection_threshold``: this app's ``prompt_injection`` threshold in (0, 1), in place of
      the scanner's; ``None`` keeps the scanner's.
    """

    description: str = ""
    allowed_intents: tuple[str, ...] = ()
    code_expected: bool = True
    secrets: tuple[str, ...] = ()
    system_prompt: str = ""
    topic_terms: tuple[str, ...] = ()
    injection_threshold: float | None = None

    def __post_init__(self) -> None:
        if self.injection_threshold is not None and not 0.0 < self.injection_threshold < 1.0:
            raise ValueError(
                f"injection_threshold must be in (0, 1), got {self.injection_threshold}"
            )
        for secret in self.secrets:
            if len(secret.strip()) < 3:
                raise ValueError(
                    f"a configured secret must have at least 3 non-blank characters, got "
                    f"{len(secret.strip())}; shorter strings match ordinary text"
                )
