"""``off_task``: an answer outside what the app is for, judged against its :class:`AppProfile`.

Three checks, each its own ``kind``:

- ``intent``: the event's ``intent`` is not one of the profile's ``allowed_intents`` (score 1);
- ``code``: program code in the answer of an app that declares ``code_expected=False`` (the
  food-ordering bot that writes Python): ``min_code_cues`` lines or more that look like code
  (a fence, a keyword, a block header, an assignment, a call, a comment, a shell command, a
  closing bracket...), a line of mostly plain words never counting; the score grows with the
  number of such lines;
- ``topic``: a long answer sharing almost no content word with the profile's description and
  topic terms (distinct words). A lexical check, so it is scored low (at most 0.7) and only on
  answers of ``min_topic_words`` distinct content words or more; an app that wants it sharper
  lists ``topic_terms``.

>>> from slowleak.streams.core.guardrails.profile import AppProfile
>>> bot = OffTaskDetector(AppProfile(description="Pizza orders", code_expected=False))
>>> [f.kind for f in bot.scan("def main():\\n    import os\\n    print(os.listdir())", intent=None)]
['code']
"""

from __future__ import annotations

import re

from slowleak.streams.core.guardrails._text import fold, folded_words, words
from slowleak.streams.core.guardrails.findings import Finding, severity_for
from slowleak.streams.core.guardrails.profile import AppProfile

__all__ = ["OffTaskDetector", "code_cues"]

# A line of program code, told from prose line by line (measured in
# ``benchmarks/bench_off_task.py`` on source files of five languages and on prose).
_FENCES = ("```", "~~~")
# Case matters: code keywords are lower case ("from x import y"), a line of prose starts with a
# capital ("From Monday to Friday ...").
_KEYWORD_STARTS = (
    "def ",
    "class ",
    "import ",
    "from ",
    "package ",
    "using ",
    "fn ",
    "func ",
    "public ",
    "private ",
    "protected ",
    "static ",
    "const ",
    "let ",
    "var ",
    "function ",
    "return ",
    "return;",
    "print(",
    "console.",
    "echo ",
    "<?php",
    "#!/",
    "typedef ",
    "struct ",
    "extern ",
    "enum ",
    "raise ",
    "yield ",
    "assert ",
    "lambda ",
    "await ",
    "async ",
    "try:",
    "try {",
    "catch ",
    "catch(",
    "finally",
    "throw ",
    "elif ",
    "local ",
    "my ",
    "sub ",
    "use ",
    "require ",
    "module.exports",
    "exports.",
    "$ ",
    "} else",
    "else {",
    "else:",
    "if (",
    "for (",
    "while (",
    "SELECT ",
    "FROM ",
    "WHERE ",
    "INSERT ",
    "UPDATE ",
    "DELETE ",
    "CREATE ",
    "JOIN ",
    "GROUP BY",
    "ORDER BY",
    "select ",
    "insert into ",
    "delete from ",
    "create table ",
)
# Lines that are one keyword or bracket.
_BARE_LINES = frozenset(
    ("fi", "done", "esac", "then", "do", "else", "end", "pass", "break", "continue", "return")
) | frozenset(("{", "}", "};", "},", "});", "})", ");", "]", "];", "*/"))
_SHELL = re.compile(
    r"(?:sudo|cd|pip3?|npm|npx|git|apt(?:-get)?|export|curl|wget|chmod|chown|mkdir|rm|cp|mv|cat"
    r"|grep|ls|docker|kubectl|python3?|node|if \[|while \[)\s+[-./~$\w\"'\[]"
)
_BLOCK = re.compile(
    r"(?:if|elif|else|for|while|with|try|except|finally|def|class|async|match|case)\b.*:$"
)
_ASSIGNMENT = re.compile(r"[A-Za-z_$][\w$.]*(?:\[[^\]]*\])?\s*(?:[-+*/%|&^.]|//|<<|>>)?=\s*[^=\s]")
_CALL_LINE = re.compile(r"[A-Za-z_$][\w$.\[\]]*\(.*\)[;:,]?$")  # "foo.bar(baz(1));"
_CALL_END = re.compile(r"\w\([^()]*\)\s*[:;{,]?$|=>|:=|==|!=|\+=")
_CODE_ENDS = (
    *("{", " }", "};", "})", "});", ");", "];", "\\", "*/", "(", "[", "=>"),
    *("&&", "||", ";;", "; then", "; do"),  # shell
)
_COMMENT = re.compile(r"//|/\*|#\s?[a-z]")  # "# a comment", not a heading ("# Menu")
_PREPROCESSOR = re.compile(r"#\s*(?:include|define|if|ifdef|ifndef|endif|else|elif|pragma|undef)\b")
_MEMBER = re.compile(r"(?:self|this|cls)\.\w")
_SIGIL = re.compile(r"\$[A-Za-z_{(]")  # a variable of Perl, PHP or shell: "$backend->can("
_TRAILING_COMMENT = re.compile(r"\s+(?:#|//).*$")
_HTML_TAG = re.compile(
    r"</?(?:div|span|p|a|html|head|body|script|style|ul|ol|li|table|tr|td|th|input|form|button"
    r"|img|br|h[1-6]|meta|link|title|\?xml|template|svg|path|label|select|option|section"
    r"|header|footer|nav)[\s>/]"
)
_PLAIN_WORD = re.compile(r"[A-Za-z][A-Za-z'\u2019-]*[,.!?;:]?")


def _plain_words(line: str) -> int:
    return sum(1 for w in line.split() if _PLAIN_WORD.fullmatch(w))


def _is_code_line(line: str) -> bool:
    """Whether one line of an answer looks like program code."""
    s = line.strip()
    if not s:
        return False
    if s.startswith(_FENCES) or _BLOCK.match(s) or _COMMENT.match(s) or _SHELL.match(s):
        return True
    if " #" in s or " //" in s:  # a trailing comment: the code is before it
        s = _TRAILING_COMMENT.sub("", s) or s
    looks_like_code = bool(
        s.startswith(_KEYWORD_STARTS)
        or _SIGIL.match(s)
        or (s[0] in "'\"" and s.endswith((",", ":", "[", "{")))  # an item of a list or a dict
        or s in _BARE_LINES
        or _PREPROCESSOR.match(s)
        or _MEMBER.match(s)
        or _ASSIGNMENT.match(s)
        or _CALL_LINE.match(s)
        or s.endswith(_CODE_ENDS)
        or (s.endswith(";") and any(c in s for c in "()=[]"))
        or (line.startswith(("    ", "\t")) and _CALL_END.search(s) and _plain_words(s) < 3)
        or _HTML_TAG.match(s)
    )
    if not looks_like_code:
        return False
    # A sentence, whatever its start or ending ("Let me know (any time)."): mostly plain words.
    n_words = len(s.split())
    return n_words < 6 or _plain_words(s) < 0.8 * n_words


_STOP = frozenset(
    [
        "the",
        "a",
        "an",
        "and",
        "or",
        "but",
        "if",
        "then",
        "of",
        "to",
        "in",
        "on",
        "at",
        "for",
        "with",
        "by",
        "from",
        "as",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "you",
        "your",
        "we",
        "our",
        "they",
        "their",
        "i",
        "me",
        "my",
        "he",
        "she",
        "his",
        "her",
        "them",
        "us",
        "not",
        "no",
        "yes",
        "can",
        "could",
        "will",
        "would",
        "should",
        "may",
        "might",
        "do",
        "does",
        "did",
        "have",
        "has",
        "had",
        "what",
        "which",
        "who",
        "whom",
        "how",
        "when",
        "where",
        "why",
        "all",
        "any",
        "some",
        "more",
        "most",
        "other",
        "such",
        "only",
        "own",
        "same",
        "so",
        "than",
        "too",
        "very",
        "just",
        "about",
        "into",
        "over",
        "also",
        "here",
        "there",
        "out",
        "up",
        "down",
        "off",
        "again",
        "further",
        "once",
        "please",
        "thank",
        "thanks",
        "sure",
        "ok",
        "okay",
        "let",
        "get",
    ]
)


def code_cues(text: str) -> list[tuple[int, int]]:
    """Spans of the lines and fences that look like program code."""
    cues: list[tuple[int, int]] = []
    pos = 0
    for line in text.split("\n"):
        end = pos + len(line)
        if _is_code_line(line):
            cues.append((pos, end))
        pos = end + 1
    return cues


_SUFFIXES = ("ing", "es", "s", "ed")


def _stem(word: str) -> str:
    for suffix in _SUFFIXES:
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


class _Stems(dict[str, str]):
    """``_stem`` of the words seen (up to 65,536): a hit is a dict lookup, cheaper than a call
    of a cached function."""

    def __missing__(self, word: str) -> str:
        if len(self) >= 65_536:
            self.clear()
        stem = self[word] = _stem(word)
        return stem


_STEMS = _Stems()


class OffTaskDetector:
    """Off-task checks for one app's answers."""

    def __init__(
        self, profile: AppProfile, *, min_code_cues: int = 3, min_topic_words: int = 40
    ) -> None:
        if min_code_cues < 1:
            raise ValueError(f"min_code_cues must be at least 1, got {min_code_cues}")
        if min_topic_words < 1:
            raise ValueError(f"min_topic_words must be at least 1, got {min_topic_words}")
        self.profile = profile
        self.min_code_cues = min_code_cues
        self.min_topic_words = min_topic_words
        self._reset()

    def _reset(self) -> None:
        text = " ".join(
            (self.profile.description, *self.profile.topic_terms, *self.profile.allowed_intents)
        )
        self._topic = frozenset(
            _stem(w) for w in words(fold(text.replace("_", " "))) if w not in _STOP
        )
        # Every word whose stem is a topic stem: the stem itself or it with a suffix.
        self._topic_forms = frozenset(
            form
            for t in self._topic
            for form in (t, *(t + suffix for suffix in _SUFFIXES))
            if _stem(form) == t
        )

    def scan(self, text: str, *, intent: str | None) -> list[Finding]:
        """The off-task findings for one answer ``text`` given the event's ``intent``."""
        found: list[Finding] = []
        allowed = self.profile.allowed_intents
        if allowed and intent is not None and intent not in allowed:
            found.append(
                Finding("off_task", "intent", 1.0, "medium", "output_text", (), f"intent={intent}")
            )
        if not self.profile.code_expected and text:
            cues = code_cues(text)
            if len(cues) >= self.min_code_cues:
                score = min(1.0, 0.5 + 0.05 * len(cues))
                found.append(
                    Finding(
                        "off_task",
                        "code",
                        score,
                        severity_for(score, high=0.9),
                        "output_text",
                        tuple(cues[:8]),
                        f"{len(cues)} code lines",
                    )
                )
        if self._topic and text:
            # Distinct content words (a set difference, then stems of the few left).
            distinct = set(folded_words(text))
            distinct -= _STOP
            distinct.difference_update([*filter(str.isdigit, distinct)])
            # On topic when its topic stems are 1% of its stems or more. Those come from the
            # words in ``_topic_forms``; there are no more stems than words: with as many words
            # as 100 times the topic stems or fewer, the answer is on topic, whatever the rest.
            on_topic = len({_STEMS[w] for w in distinct.intersection(self._topic_forms)})
            if len(distinct) < self.min_topic_words or (
                on_topic and len(distinct) <= 100 * on_topic
            ):
                content: set[str] = set()
            else:
                content = set(map(_STEMS.__getitem__, distinct))
            if len(content) >= self.min_topic_words:
                share = len(content & self._topic) / len(content)
                if share < 0.01:
                    score = 0.7 * (1.0 - share / 0.01)
                    found.append(
                        Finding(
                            "off_task",
                            "topic",
                            round(score, 4),
                            "low",
                            "output_text",
                            ((0, len(text)),),
                            f"{share:.1%} of content words on topic",
                        )
                    )
        return found
