"""``secret_leak``: credentials in a model's answer.

Three layers, each a list of ``(kind, pattern)`` whose group ``secret`` (or the whole match) is the
span reported and masked:

1. provider key formats, recognisable on their own (``AKIA...``, ``ghp_...``, ``xoxb-...``,
   ``sk-ant-...``, private key blocks, JWTs);
2. credentials in context: a URL or connection string with a password, an ``Authorization``
   header, a command-line ``--password``/``-p`` argument, a value too plain to recognise alone
   (hex, UUID, base64) next to its provider's name or label (Okta, SonarQube, Vault, Code
   Climate, Postmark, Jenkins);
3. generic assignments, ``api_key = "..."``, ``password: ...``, ``("API_KEY", "...")``, kept
   when the value looks like a secret: not a placeholder (``<your-key>``, ``${VAR}``, ``xxxx``,
   a reference such as ``$BASE_URL/path``), and either long and varied (Shannon entropy of at
   least ``min_entropy`` bits per character) or a password-ish key with a literal value (not
   for a name and a value as arguments, where only long and varied values count).

>>> text = 'token = "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"'
>>> [(m.kind, m.start, m.end) for m in find_secrets(text)]
[('github_token', 9, 49)]
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from slowleak.streams.core.guardrails._text import ASCII_LOWER

__all__ = ["SecretMatch", "entropy_bits", "find_secrets"]

_S = r"(?P<secret>"
_PROVIDERS: list[tuple[str, str]] = [
    (
        "private_key",
        r"-----BEGIN[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----[\s\S]{0,8000}?"
        r"(?:-----END[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----|\Z)",
    ),
    ("aws_access_key", r"\b(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}\b"),
    ("github_token", r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{60,255})\b"),
    (
        "gitlab_token",
        r"\b(?:glpat|gldt|glptt|glrt|glsoat|glcbt|gloas)-[A-Za-z0-9_-]{20,64}\b|\bGR1348941[A-Za-z0-9_-]{20}\b",
    ),
    (
        "slack_token",
        r"\bxox[abposer]-(?:\d+-)+[A-Za-z0-9-]{8,64}\b|https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9/_-]{20,}",
    ),
    ("anthropic_key", r"\bsk-ant-(?:api|admin)\d{2}-[A-Za-z0-9_-]{80,100}\b"),
    (
        "openai_key",
        r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,74}T3BlbkFJ[A-Za-z0-9_-]{20,74}\b|\bsk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{40,200}\b|\bsk-[A-Za-z0-9]{48}\b",
    ),
    ("google_api_key", r"\bAIza[0-9A-Za-z_-]{35}(?![\w-])"),
    (
        "google_oauth",
        r"\bya29\.[0-9A-Za-z_-]{20,}|\bGOCSPX-[A-Za-z0-9_-]{28}\b|\b\d{6,14}-[a-z0-9]{32}\.apps\.googleusercontent\.com\b",
    ),
    ("stripe_key", r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{20,99}\b|\bwhsec_[A-Za-z0-9]{32,}\b"),
    ("twilio_key", r"\b(?:SK|AC)[0-9a-f]{32}\b"),
    ("sendgrid_key", r"\bSG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}\b"),
    ("npm_token", r"\bnpm_[A-Za-z0-9]{36}\b"),
    ("pypi_token", r"\bpypi-AgE[A-Za-z0-9_-]{50,}"),
    ("huggingface_token", r"\bhf_[A-Za-z0-9]{34,40}\b|\bapi_org_[A-Za-z0-9]{34}\b"),
    ("jwt", r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
    (
        "azure_storage_key",
        r"AccountKey="
        + _S
        + r"[A-Za-z0-9+/]{20,100}={0,2})|\b[a-zA-Z0-9_~.-]{3}\dQ~[a-zA-Z0-9_~.-]{31,34}\b",
    ),
    ("digitalocean_token", r"\bdo[opr]_v1_[a-f0-9]{64}\b"),
    ("databricks_token", r"\bdapi[a-f0-9]{32}(?:-\d)?\b"),
    ("shopify_token", r"\bshp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}\b"),
    ("mailgun_key", r"\bkey-[a-f0-9]{32}\b"),
    ("mailchimp_key", r"\b[a-f0-9]{32}-us\d{1,2}\b"),
    ("telegram_bot_token", r"\b\d{8,10}:AA[A-Za-z0-9_-]{30,35}\b"),
    ("twitch_stream_key", r"\blive_\d{6,12}_[A-Za-z0-9]{30}\b"),
    ("salesforce_token", r"\b00D[A-Za-z0-9]{12}![A-Za-z0-9._]{80,}"),
    ("azure_devops_pat", r"\b[A-Za-z0-9]{76}AZDO[A-Za-z0-9]{4}\b"),
    ("newrelic_key", r"\b[a-z0-9]{36}NRAL\b|\bNRAA-[a-f0-9]{27}\b"),
    ("truenas_key", r"(?<![\w-])\d{1,3}-[A-Za-z0-9]{64}\b"),
    ("thingsboard_token", r"/api/v1/" + _S + r"[a-z0-9]{20})/(?:telemetry|attributes|rpc)"),
    ("grafana_token", r"\beyJrIjoi[A-Za-z0-9+/]{30,}={0,2}"),
    ("private_key", r"\bLS0tLS1CRUdJTi[A-Za-z0-9+/]{40,}={0,2}"),
    ("dockerhub_token", r"\bdckr_pat_[A-Za-z0-9_-]{27}\b"),
    ("atlassian_token", r"\bATATT3[A-Za-z0-9_=-]{150,300}|\bATCTT3[A-Za-z0-9_=-]{150,300}"),
    ("newrelic_key", r"\bNR(?:AK|II|IQ|JS|RA)-[A-Za-z0-9_-]{27,42}\b"),
    ("grafana_token", r"\bglsa_[A-Za-z0-9]{32}_[a-f0-9]{8}\b|\bglc_[A-Za-z0-9+/]{32,400}={0,2}"),
    ("postman_key", r"\bPMAK-[a-f0-9]{24}-[a-f0-9]{34}\b"),
    ("doppler_token", r"\bdp\.(?:st|sa|ct|pt|scim|audit)\.[A-Za-z0-9_.-]{40,}"),
    ("groq_key", r"\bgsk_[A-Za-z0-9]{52}\b"),
    ("tavily_key", r"\btvly-[A-Za-z0-9]{32}\b"),
    (
        "hashicorp_token",
        r"\bhv[sb]\.[A-Za-z0-9_-]{24,}|\b[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_=-]{60,70}",
    ),
    ("rubygems_key", r"\brubygems_[a-f0-9]{48}\b"),
    ("sourcegraph_token", r"\bsgp_(?:[a-f0-9]{16}_|local_)?[a-f0-9]{40}\b"),
    ("square_token", r"\bEAAA[A-Za-z0-9_-]{60}\b|\bsq0(?:atp|csp)-[A-Za-z0-9_-]{22,43}\b"),
    ("facebook_token", r"\bEAA[CD][A-Za-z0-9]{80,}"),
    ("artifactory_key", r"\bAKCp[A-Za-z0-9]{69}\b|\bcmVmdGtu[A-Za-z0-9]{56}\b"),
    ("dynatrace_token", r"\bdt0[a-z]\d{2}\.[A-Z0-9]{24}\.[A-Z0-9]{64}\b"),
    ("age_key", r"\bAGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}\b"),
    ("adafruit_key", r"\baio_[A-Za-z0-9]{28}\b"),
    ("dtrack_key", r"\bodt_[A-Za-z0-9]{32,}\b"),
    ("sonarqube_token", r"\bsq[pua]_[a-f0-9]{40}\b"),
    ("firecrawl_key", r"\bfc-[a-f0-9]{32}\b"),
    ("jina_key", r"\bjina_[A-Za-z0-9_-]{60}\b"),
    ("figma_token", r"\bfig[dou]_[A-Za-z0-9_-]{40,}"),
    (
        "msteams_webhook",
        r"https://[a-z0-9.-]*(?:outlook\.office\.com|webhook\.office\.com)/webhook(?:b2)?/[A-Za-z0-9@/_-]{60,}",
    ),
    (
        "discord_webhook",
        r"https://(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/\d+/[A-Za-z0-9_-]{60,}",
    ),
    (
        "password_hash",
        r"\$2[abxy]?\$\d{2}\$[./A-Za-z0-9]{53}|\$(?:1|5|6|8)\$(?:rounds=\d+\$)?[./A-Za-z0-9]{1,16}\$[./A-Za-z0-9]{22,86}|\$argon2(?:id|i|d)\$[^\s\"']{30,}|\$krb5(?:asrep|tgs)\$\d+\$[^\s\"']{40,}",
    ),
    (
        "wireguard_key",
        r"(?i:PrivateKey|PresharedKey)\s*=\s*" + _S + r"[A-Za-z0-9+/]{43}=)",
    ),
    ("nuget_key", r"\boy2[a-z0-9]{43}\b"),
    ("kubernetes_secret", r"(?i:client-key-data|token):\s*" + _S + r"[A-Za-z0-9+/]{40,}={0,2})"),
]
# Credentials recognisable by where they stand rather than what they look like.
_CONTEXT: list[tuple[str, str]] = [
    (
        "connection_string",
        r"\b[a-z][a-z0-9+.-]{1,20}://[^\s:/@'\"<>]{1,64}:"
        + _S
        + r"[^\s@/'\"<>]{1,128})@[^\s/@'\"<>]+",
    ),
    ("connection_string", r"(?i:(?:password|pwd)=)" + _S + r"[^;'\"\s]{3,128})(?=;|'|\"|\s|$)"),
    (
        "authorization_header",
        r"(?i:authorization)[\"']?\s*[:=]\s*[\"']?(?i:bearer|basic|token|bot|ssws)\s+"
        + _S
        + r"[A-Za-z0-9._~+/=-]{12,})",
    ),
    (
        "authorization_header",
        r"(?i:authorization)[\"']?\s*[:=]\s*[\"']?" + _S + r"[A-Za-z0-9_-]{8,}_[A-Za-z0-9]{20,})",
    ),
    (
        "cli_password",
        r"(?:\s|^)(?:(?i:--?password|--passwd|--api-?key|--[\w-]*token|--[\w-]*secret)|-p)[ =]"
        + _S
        + r"(?![$%-])[^\s'\"]{4,128})",
    ),
    (
        "basic_auth_argument",
        r"(?:\s|^)(?:-u|--user)\s+[\"']?[^\s:'\"]+:" + _S + r"[^\s'\"@]{6,128})",
    ),
    (
        "password_in_prose",
        r"(?i:password)\b[^.\n]{0,40}?\bis\s+[\"'`]" + _S + r"[^\"'`\s]{3,64})[\"'`]",
    ),
    (
        "password_argument",
        r"\b(?:NetworkCredential|DirectoryEntry|PasswordAuthentication|login)\([^()]*?,\s*[\"']"
        + _S
        + r"[^\"']{3,128})[\"']\s*\)",
    ),
    (
        "config_password",
        r"(?i:key)=[\"'][\w.-]*(?i:password|secret|token|api_?key)[\w.-]*[\"']\s+(?i:value)=[\"']"
        + _S
        + r"[^\"']{3,200})[\"']",
    ),
    ("netrc_password", r"\bmachine\s+\S+\s+login\s+\S+\s+password\s+" + _S + r"\S{3,})"),
    # "... the following password to proceed:\n\nbd9627decc63...": a long token with a digit.
    (
        "password_in_prose",
        r"(?i:password)\b[^.\n]{0,60}?:\s+" + _S + r"(?=[A-Za-z]*\d)[A-Za-z0-9]{16,64})\b",
    ),
    # Provider credentials whose format alone is too plain (hex, UUID, base64): the provider's
    # name or the key's usual label must be next to them.
    (
        "okta_token",
        r"(?i:okta|\bssws)[\w\"'{}\s:=.-]{0,60}?(?<![\w-])" + _S + r"00[A-Za-z0-9_-]{40})(?![\w-])",
    ),
    (
        "sonarqube_token",
        r"(?i:sonar[._]?(?:login|token))[\"']?\s*[=:,]?\s*[\"']?" + _S + r"[a-f0-9]{40})\b",
    ),
    (
        "hashicorp_token",
        r"(?i:vault)[\w\"'\s:=-]{0,30}?(?<![\w.])" + _S + r"s\.[A-Za-z0-9_-]{24,})",
    ),
    (
        "hashicorp_token",
        r"(?i:unseal(?:\s+key\s*\d*\s*:)?)\s+" + _S + r"[A-Za-z0-9+/]{40,}={0,2})",
    ),
    (
        "codeclimate_token",
        r"(?i:reporter_id|codeclimate\w*token)[\"']?\s*[:=]\s*[\"']?" + _S + r"[a-f0-9]{64})\b",
    ),
    (
        "postmark_token",
        r"(?i:postmark)[\w-]*[\"']?\s*:\s*[\"']"
        + _S
        + r"[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12})[\"']",
    ),
    ("jenkins_token", r"(?i:jenkins-crumb)\s*[:=]\s*" + _S + r"[a-f0-9]{32,64})\b"),
]
# ``name = value``, ``name: value``, ``"name": "value"``, ``name="value"``, ``$name = 'value'``.
_ASSIGNMENT = re.compile(
    r"(?P<name>[A-Za-z_$@][A-Za-z0-9_.-]{0,60})[\"']?"
    r"(?:\s*(?:==|!=|=|:=|=>)\s*|\s*:(?=[\s\"'])\s*|\s+(?=[\"'])|(?<=[\"'])\s*,\s*(?=[\"']))"
    r"(?:\"(?P<dq>[^\"\n]{3,200})\"|'(?P<sq>[^'\n]{3,200})'|`(?P<bq>[^`\n]{3,200})`"
    r"|\\\"(?P<eq>[^\"\n\\]{3,200})\\\"|(?P<bare>[^\s\"'`,;)&\\]{3,200}(?<!:)))"
)
_PROSE_AFTER = re.compile(r" [a-z]+\b")
_SECRET_NAME = re.compile(
    r"(?i)(?:pass(?:wd|word|phrase)?|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|auth"
    r"|credential|private[_-]?key|client[_-]?secret|signing[_-]?key|session[_-]?key|cookie"
    r"|[._]key$|bearer|_pat$|^pat$)"
)
_PASSWORD_NAME = re.compile(r"(?i)(?:pass(?:wd|word)?|pwd|secret)$|^(?:pass(?:wd|word)?|pwd)")
_NOT_SECRET_NAME = re.compile(
    r"(?i)(?:_id$|^id$|name$|user(?:name)?$|_url$|_path$|_file$|type$|length$|^max|^min|_max|_min|expir|count|size|enabled$|required$|_len$|policy$|reset|hint|field$|label$|prompt)"
)
_PLACEHOLDER = re.compile(
    r"(?i)^(?:<[^>]*>|\$\{?[A-Za-z_][\w.]*\}?|%\(?\w+\)?s?|\{\{?[^}]*\}?\}|\[[^\]]*\]|\*+|x+|\.+"
    r"|null|none|nil|true|false|undefined|changeme|change_me|your[_-].*"
    r"|.*(?:placeholder|example|redacted|dummy|sample|fake|here)\b.*|process\.env.*|os\.environ.*"
    r"|os\.getenv.*|env\(.*|getenv.*|(?:self|this|config|settings|params?|args|options|opts)\..*"
    r"|[\w.]+\(.*|\(.*|\$\(.*|#.*|&lt;.*|env\..*|arn:.*|/.*|.*\$_(?:POST|GET|REQUEST).*"
    r"|\$\{?[A-Za-z_][\w.]*\}?[/:].*|[,;+.)\]}].*)$"
)


@dataclass(frozen=True, slots=True)
class SecretMatch:
    """One credential: its kind and the ``[start, end)`` of the secret value itself."""

    kind: str
    start: int
    end: int
    score: float


def entropy_bits(value: str) -> float:
    """Shannon entropy per character of ``value``'s character distribution, in bits."""
    if not value:
        return 0.0
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in Counter(value).values())


def _compile(rules: list[tuple[str, str]]) -> list[tuple[str, re.Pattern[str]]]:
    return [(kind, re.compile(pattern, re.MULTILINE)) for kind, pattern in rules]


_PROVIDER_RES = _compile(_PROVIDERS)
_CONTEXT_RES = _compile(_CONTEXT)
# A rule runs only when one of its anchors (literal strings, cheap to look for) is in the text:
# running every rule costs ~5 ms on 1 KB, the anchors well under 0.1 ms. Kinds without anchors
# always run; those in _LOWER_ANCHORS are looked for in the lower-cased text. Rules in _CONTEXT
# use _LOWER_ANCHORS only (some share a kind with a provider rule).
_ANCHORS: dict[str, tuple[str, ...]] = {
    "private_key": ("PRIVATE KEY", "LS0tLS1"),
    "aws_access_key": ("AKIA", "ASIA", "ABIA", "ACCA", "A3T"),
    "github_token": ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    "gitlab_token": (
        "glpat-",
        "gldt-",
        "glptt-",
        "glrt-",
        "glsoat-",
        "glcbt-",
        "gloas-",
        "GR1348941",
    ),
    "slack_token": ("xox", "hooks.slack.com"),
    "anthropic_key": ("sk-ant-",),
    "openai_key": ("sk-",),
    "google_api_key": ("AIza",),
    "google_oauth": ("ya29.", "GOCSPX-", "googleusercontent"),
    "stripe_key": ("k_live_", "k_test_", "whsec_"),
    "twilio_key": ("SK", "AC"),
    "sendgrid_key": ("SG.",),
    "npm_token": ("npm_",),
    "pypi_token": ("pypi-",),
    "huggingface_token": ("hf_", "api_org_"),
    "jwt": ("eyJ",),
    "azure_storage_key": ("AccountKey=", "Q~"),
    "digitalocean_token": ("_v1_",),
    "databricks_token": ("dapi",),
    "shopify_token": ("shpat_", "shpca_", "shppa_", "shpss_"),
    "mailgun_key": ("key-",),
    "mailchimp_key": ("-us",),
    "telegram_bot_token": (":AA",),
    "twitch_stream_key": ("live_",),
    "salesforce_token": ("00D",),
    "azure_devops_pat": ("AZDO",),
    "newrelic_key": ("NRAL", "NRAA-", "NRAK-", "NRII-", "NRIQ-", "NRJS-", "NRRA-"),
    "thingsboard_token": ("/api/v1/",),
    "grafana_token": ("eyJrIjoi", "glsa_", "glc_"),
    "dockerhub_token": ("dckr_pat_",),
    "atlassian_token": ("ATATT3", "ATCTT3"),
    "postman_key": ("PMAK-",),
    "doppler_token": ("dp.",),
    "groq_key": ("gsk_",),
    "tavily_key": ("tvly-",),
    "hashicorp_token": ("hvs.", "hvb.", ".atlasv1."),
    "rubygems_key": ("rubygems_",),
    "sourcegraph_token": ("sgp_",),
    "square_token": ("EAAA", "sq0"),
    "facebook_token": ("EAAC", "EAAD"),
    "artifactory_key": ("AKCp", "cmVmdGtu"),
    "dynatrace_token": ("dt0",),
    "age_key": ("AGE-SECRET-KEY-",),
    "adafruit_key": ("aio_",),
    "dtrack_key": ("odt_",),
    "sonarqube_token": ("sqp_", "squ_", "sqa_"),
    "firecrawl_key": ("fc-",),
    "jina_key": ("jina_",),
    "figma_token": ("figd_", "figo_", "figu_"),
    "msteams_webhook": ("webhook",),
    "discord_webhook": ("discord",),
    "password_hash": ("$2", "$1$", "$5$", "$6$", "$8$", "$argon2", "$krb5"),
    "nuget_key": ("oy2",),
}
_LOWER_ANCHORS: dict[str, tuple[str, ...]] = {
    "wireguard_key": ("privatekey", "presharedkey"),
    "kubernetes_secret": ("client-key-data", "token:"),
    "connection_string": ("://", "password=", "pwd="),
    "authorization_header": ("authorization",),
    "cli_password": ("-p ", "-p=", "--", "-password"),
    "basic_auth_argument": ("-u ", "--user"),
    "password_in_prose": ("password",),
    "password_argument": (
        "networkcredential",
        "directoryentry",
        "passwordauthentication",
        "login(",
    ),
    "config_password": ("value=",),
    "netrc_password": ("machine",),
    "okta_token": ("okta", "ssws"),
    "sonarqube_token": ("sonar",),
    "hashicorp_token": ("vault", "unseal"),
    "codeclimate_token": ("reporter_id", "codeclimate"),
    "postmark_token": ("postmark",),
    "jenkins_token": ("jenkins-crumb",),
}


def _lower_anchors(kind: str) -> frozenset[bytes] | None:
    """The UTF-8 bytes of rule ``kind``'s lower-case anchors (None: it has none)."""
    anchors = _LOWER_ANCHORS.get(kind)
    return None if anchors is None else frozenset(a.encode() for a in anchors)


# ``_PROVIDER_RES`` with each rule's anchors: looked for in the credential runs (``_ANCHORS``),
# else as bytes in the lower-cased text (``_LOWER_ANCHORS``), else none (the rule always runs).
_PROVIDER_PLAN = tuple(
    (
        kind,
        pattern,
        None if kind not in _ANCHORS else frozenset(_ANCHORS[kind]),
        _lower_anchors(kind),
    )
    for kind, pattern in _PROVIDER_RES
)
# ``_CONTEXT_RES`` with the UTF-8 bytes of each rule's anchors (None: the rule always runs).
_CONTEXT_RES_ANCHORED = tuple(
    (kind, pattern, _lower_anchors(kind)) for kind, pattern in _CONTEXT_RES
)
# Every anchor, looked for once per text; each rule then asks whether one of its own is there.
_RUN_ANCHORS = tuple(sorted({a for _, _, anchors, _ in _PROVIDER_PLAN for a in anchors or ()}))
_LOWER_ANCHORS_B = tuple(
    sorted(
        {a for *_, anchors in _PROVIDER_PLAN for a in anchors or ()}
        | {a for *_, anchors in _CONTEXT_RES_ANCHORED for a in anchors or ()}
    )
)
# Where a secret-ish name may stand; the assignment pattern is tried from the start of each.
_SECRET_WORDS = (
    "pass",
    "pwd",
    "secret",
    "token",
    "key",
    "auth",
    "credential",
    "cookie",
    "bearer",
    "pat",
)
_SECRET_WORDS_B = tuple(w.encode() for w in _SECRET_WORDS)
# The characters other than ASCII letters that ``_SECRET_WORD`` (case-insensitive) matches.
_FOLDS_TO_ASCII = ("\u0130", "\u0131", "\u017f", "\u212a")
_SECRET_WORD = re.compile(r"(?i)pass|pwd|secret|token|key|auth|credential|cookie|bearer|pat\b")
# Provider keys are long runs without spaces: where there is none, no provider rule can match
# (private key blocks, which contain spaces, are looked for on their own).
_CREDENTIAL_RUN = re.compile(r"[A-Za-z0-9_+/=.~$!:@-]{16,}")
# The same runs without the pattern (which tries every position of every shorter word): on the
# UTF-8 bytes, a space for anything but the run's characters, then ``split``.
_RUN_BYTES = bytes(
    c if chr(c) in string.ascii_letters + string.digits + "_+/=.~$!:@-" else 32 for c in range(256)
)
_NAME_CHAR = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-$@")


def _credential_runs(text: str) -> str:
    """``" ".join(_CREDENTIAL_RUN.findall(text))``."""
    try:
        raw = text.encode()
    except UnicodeEncodeError:  # a lone surrogate
        return " ".join(_CREDENTIAL_RUN.findall(text))
    tokens = raw.translate(_RUN_BYTES).split()
    if not tokens or max(map(len, tokens)) < 16:
        return ""
    return b" ".join([t for t in tokens if len(t) >= 16]).decode()


def _secret_word_starts(text: str) -> list[int] | None:
    """Where ``_SECRET_WORD`` matches in ``text``, found with ``bytes.find`` on its UTF-8 bytes
    with ASCII letters lower-cased, and also where one of its words overlaps an earlier match
    (within the same name, so the name's start is the same and the caller tries it once).
    None when the text holds a character that the case-insensitive pattern reads as an ASCII
    letter (dotted and dotless I, long s, the Kelvin sign), or a lone surrogate."""
    ascii_text = text.isascii()
    if not ascii_text and any(c in text for c in _FOLDS_TO_ASCII):
        return None
    try:
        raw = text.encode()
    except UnicodeEncodeError:
        return None
    low = raw.translate(ASCII_LOWER)
    starts = []
    for word in _SECRET_WORDS_B:
        pos = low.find(word)
        while pos >= 0:
            end = pos + len(word)
            if word != b"pat" or not _word_char_at(low, end):  # ``pat\b``
                starts.append(pos)
            pos = low.find(word, end)
    if starts and not ascii_text:  # byte offsets to character offsets
        starts = [len(raw[:p].decode()) for p in starts]
    starts.sort()
    return starts


def _word_char_at(raw: bytes, at: int) -> bool:
    """Whether the character starting at byte ``at`` of UTF-8 ``raw`` is a word character."""
    if at >= len(raw):
        return False
    if raw[at] < 128:
        return raw[at] == 95 or chr(raw[at]).isalnum()
    return raw[at : at + 4].decode("utf-8", "ignore")[:1].isalnum()


def _contains(lower: str) -> Callable[[bytes], bool]:
    """``lambda a: a.decode() in lower`` for ASCII ``a``, on ``lower``'s UTF-8 bytes."""
    try:
        return lower.encode().__contains__
    except UnicodeEncodeError:  # a lone surrogate
        return lambda a: a.decode() in lower


def _value_score(name: str, value: str, *, min_entropy: float) -> float:
    """How much a value assigned to a secret-named key looks like a real secret, in [0, 1]."""
    value = value.strip("\"'")  # a quoted string inside a string: '"9f8e..."'
    if _PLACEHOLDER.match(value) or len(set(value)) < 3:
        return 0.0
    bits = entropy_bits(value)
    if len(value) >= 12 and bits >= min_entropy:
        return min(1.0, 0.7 + 0.3 * (bits - min_entropy))
    if _PASSWORD_NAME.search(name) and len(value) >= 4:
        return 0.75
    if len(value) >= 16 and bits >= min_entropy - 0.5:
        return 0.6
    return 0.0


def find_secrets(
    text: str, *, min_entropy: float = 3.0, min_score: float = 0.5
) -> list[SecretMatch]:
    """Every credential in ``text`` scoring at least ``min_score``, sorted, without overlaps."""
    found: list[SecretMatch] = []
    lower = text.lower()

    def add(kind: str, m: re.Match[str], score: float) -> None:
        group = "secret" if "secret" in m.re.groupindex and m.group("secret") else 0
        start, end = m.span(group)
        if end > start and not any(start < f.end and f.start < end for f in found):
            found.append(SecretMatch(kind, start, end, score))

    runs = _credential_runs(text)
    # The anchors (ASCII) of lower-cased text are looked for in its UTF-8 bytes: far faster
    # than in a str that holds wider characters.
    has = _contains(lower)
    if "PRIVATE KEY" in text:
        runs += " PRIVATE KEY"
    in_text = frozenset(filter(has, _LOWER_ANCHORS_B))
    in_runs = frozenset(filter(runs.__contains__, _RUN_ANCHORS)) if runs else frozenset()
    for kind, pattern, anchors, lower_anchors in _PROVIDER_PLAN if runs else ():
        if (
            not in_runs.isdisjoint(anchors)
            if anchors is not None
            else lower_anchors is None or not in_text.isdisjoint(lower_anchors)
        ):
            for m in pattern.finditer(text):
                add(kind, m, 1.0)
    for kind, pattern, anchors_b in _CONTEXT_RES_ANCHORED:
        if anchors_b is None or not in_text.isdisjoint(anchors_b):
            for m in pattern.finditer(text):
                value = m.group("secret")
                if kind == "connection_string" and value[:1] == "#" and value[1:2] != "{":
                    value = value.lstrip("#")  # ``Password=#gets0m3;``: no comment (``#{x}`` is)
                if value and not _PLACEHOLDER.match(value):
                    add(kind, m, 0.9)
    tried: set[int] = set()
    starts = _secret_word_starts(text)
    hits: Iterable[int]
    if starts is not None:
        hits = starts
    elif not any(map(has, _SECRET_WORDS_B)):
        hits = ()
    else:
        hits = (m.start() for m in _SECRET_WORD.finditer(text))
    for start in hits:
        while start > 0 and text[start - 1] in _NAME_CHAR:
            start -= 1
        if start in tried:
            continue
        tried.add(start)
        assigned = _ASSIGNMENT.match(text, start)
        if assigned is None:
            continue
        m = assigned
        name = m.group("name").strip("$@")
        if not _SECRET_NAME.search(name) or _NOT_SECRET_NAME.search(name):
            continue
        group = next(g for g in ("dq", "sq", "bq", "eq", "bare") if m.group(g) is not None)
        value = m.group(group)
        if value.count(" ") > 2:  # a sentence in quotes, not a secret
            continue
        if group == "bare" and value.isalpha() and _PROSE_AFTER.match(text, m.end()):
            # "The secret: keep going"
            continue
        score = _value_score(name, value, min_entropy=min_entropy)
        if "," in text[m.end("name") : m.start(group)]:
            # ``("API_KEY", "...")``: a name and a value as arguments; only a long, varied value
            # (``fields = ["password", "username"]`` is a list of names).
            bare = value.strip("\"'")
            if len(bare) < 12 or entropy_bits(bare) < min_entropy:
                continue
        s, e = m.span(group)
        while e - s > 2 and text[s] in "\"'" and text[e - 1] == text[s]:
            s, e = s + 1, e - 1
        if score >= min_score and not any(s < f.end and f.start < e for f in found):
            found.append(SecretMatch("generic_secret", s, e, score))
    found.sort(key=lambda f: f.start)
    return found
