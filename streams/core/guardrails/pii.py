"""``pii_leak``: personal data in a model's answer (and, optionally, in the user's input).

Each match is validated before it counts: payment cards by the Luhn checksum, IBANs by ISO 13616
mod-97, US SSNs by their reserved ranges, IPv4 octets by range. Overlaps are resolved in the order
IBAN > card > SSN > e-mail > IP > phone > labelled id > street address > person, so a card
number is never also a phone. Names are found only where the text says a person is meant (after
a title, "patient", "by", "Dear"...; before a possessive) or where a run of capitalised words
starts with a common first name: a lexical heuristic, not a name model.

>>> [(m.kind, m.start, m.end) for m in find_pii("Mail jo@example.org or call 212-555-0143.")]
[('email', 5, 19), ('phone', 28, 40)]
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from importlib import resources

__all__ = ["PII_KINDS", "PiiMatch", "find_pii", "iban_valid", "luhn_valid", "verhoeff_valid"]

PII_KINDS = (
    "card",
    "iban",
    "ssn",
    "email",
    "ip_address",
    "phone",
    "id_number",
    "street_address",
    "person",
)

_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}\b"
)
_CARD = re.compile(r"(?<![\w+-])(?:\d[ -]?){11,18}\d(?![\w-])")
# 12-digit Maestro cards; other 12-digit numbers are too often something else.
_MAESTRO_12 = ("50", "56", "57", "58", "63", "67")
_IBAN = re.compile(r"\b[A-Za-z]{2}\d{2}(?:[ ]?[A-Za-z0-9]){11,30}\b")
_SSN = re.compile(r"(?<![\d-])(\d{3})([- ])(\d{2})\2(\d{4})(?![\d-])")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.]|\.\d)")
_IPV6 = re.compile(
    r"(?<![:\w])(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}(?![:\w])"
    r"|(?<![:\w])(?:[0-9A-Fa-f]{1,4}:){1,6}(?::[0-9A-Fa-f]{1,4}){1,6}(?![:\w])"
)
# A phone number: an optional country code (+CC, (+CC), +(CC)), an optional trunk digit before a
# parenthesised area code, then groups of digits separated by one space, dot, dash or slash,
# 7 to 15 digits in all, an optional extension.
_PHONE = re.compile(
    r"(?<![\w+./-])(?:(?:\+\d{1,3}|\(\+\d{1,3}\)|\+\(\d{1,3}\))[ .-]?)?"
    r"(?:\d{1,2}[ .-]?(?=\())?(?:\(\d{1,5}\)[ .-]?)?(?:\d{1,4}(?:[ .-]|/ ?)?){1,5}\d{2,4}"
    r"(?:\s?(?:x|ext\.?|extension)\s?\d{1,5})?(?![\w/:-]|\.\d)"
)
# A number of one or two digit groups is a phone only after a word that says so (not after
# "order number", "account no." and the like)...
_PHONE_CUE = re.compile(
    r"(?:phone|mobile|cell|tel|fax|desk|call|dial|reach|contact|registered|whatsapp|sms"
    r"|telefon|handy|text|txt|ring|callback|hotline|landline|(?:office|phone|direct|land|hot|help|support|main|work|home)\s?line|number|no\.?|nr\.?)\b[^\n\d]{0,12}"
    r"\n?\s*$|\bat\s$",
    re.IGNORECASE,
)
_NOT_PHONE_LABEL = re.compile(
    r"(?i)\b(?:order|tracking|account|acct|invoice|reference|ref|serial|model|policy|case|ticket"
    r"|id|member|card|routing|licen[cs]e|passport|security|tax|insurance|patient|employee"
    r"|student|customer|confirmation|booking|flight|transaction|item|part|product|version|build"
    r"|batch|lot|record|registration|vat|iban|sort|bank|document|file|room|house|street)"
    r"\s+(?:number|no\.?|nr\.?|#)"
)
# ... or before words that say so ("5403926876 is my cell").
_PHONE_AFTER = re.compile(
    r"\s+(?:(?:is|as|was)\s+)?(?:(?:my|his|her|their|our|your|the|a)\s+)?"
    r"(?:(?:work|home|office|personal|direct|new|old|main|private|business|mobile)\s+)?"
    r"(?:phone|cell|mobile|callback|landline|fax|telephone|hotline|whatsapp)\b",
    re.IGNORECASE,
)
_FOLLOWED_BY_NAME = re.compile(r"[ \t]+[A-Z][a-z]")
# An identifier after the word that names it: "passport number X1234567", "MRN: 00482913".
_ID = re.compile(
    r"(?i:\b(?:passport|driver'?s?\s+licen[cs]e|licen[cs]e|account|acct|routing|member(?:ship)?"
    r"|policy|patient|employee|staff|medical\s+record|record|mrn|voter|tax|tin|ein|itin|national"
    r"|aadhaar|aadhar|pan|nhs|sin|insurance|customer|student|badge|social\s+security|user)"
    r"(?:\s+(?:id|identification|number|no\.?|num|#|code|card))*\s*(?:is|was|:|#|=|-)?\s*)"
    r"(?P<id>(?=[A-Z0-9-]*\d{3})[A-Z0-9][A-Z0-9-]{4,22})\b"
)
_AADHAAR = re.compile(r"(?<![\d-])[2-9]\d{3}[ -]\d{4}[ -]\d{4}(?![\d-]| \d)")
_VERHOEFF_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8),
    (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2),
    (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_VERHOEFF_P = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
    (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
    (9, 4, 5, 3, 1, 2, 6, 8, 7, 0),
    (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5),
    (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)
_IP_VERSION = re.compile(r"(?i)(?:version|release|\bv)\s*$")
_EIN = re.compile(r"(?<![\d-])\d{2}-\d{7}(?![\d-])")
# A person's name where the text says it is one: after a title or a word that introduces a
# person, or before a possessive. Capitalised words only, common non-names excluded.
_NAME = r"[A-Z][a-z]+(?:-[A-Z][a-z]+)?"
# No leading ``\b`` (it makes the scan ~2x slower): the caller checks the start of a word.
_NAME_RUN = re.compile(r"(?P<name>" + _NAME + r"(?:\s+[A-Z]\.)?(?:[ \t]+" + _NAME + r"){1,2})\b")
_PERSON_CUE = re.compile(
    r"(?:\b(?:Mr|Mrs|Ms|Miss|Dr|Prof|Sir|Madam)\.?|(?i:\b(?:name(?:d| is)?|patient|customer"
    r"|employee|client|user|dear|hi|hello|contact|by|to|from|for|with|cc|signed|sincerely|regards)"
    r"\s*[:,]?))\s+$"
)
# Every word that ``_PERSON_CUE`` may end with (lower-cased), for ``_may_follow_cue``.
_CUE_WORDS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "miss",
        "dr",
        "prof",
        "sir",
        "madam",
        "name",
        "named",
        "is",
        "patient",
        "customer",
        "employee",
        "client",
        "user",
        "dear",
        "hi",
        "hello",
        "contact",
        "by",
        "to",
        "from",
        "for",
        "with",
        "cc",
        "signed",
        "sincerely",
        "regards",
    ]
)
_PUNCTUATION_TO_SPACE = str.maketrans(string.punctuation, " " * len(string.punctuation))
_LONG_NUMBER = re.compile(r"\d(?:[ .()/-]{0,3}\d){6}")
_IPV4_GATE = re.compile(r"\d\.\d{1,3}\.\d")
_IPV6_GATE = re.compile(r"[0-9A-Fa-f]:[0-9A-Fa-f]{0,4}:")
_ID_WORDS = frozenset(
    [
        "passport",
        "licence",
        "license",
        "account",
        "acct",
        "routing",
        "member",
        "membership",
        "policy",
        "patient",
        "employee",
        "staff",
        "record",
        "mrn",
        "voter",
        "tax",
        "tin",
        "ein",
        "itin",
        "national",
        "aadhaar",
        "aadhar",
        "pan",
        "nhs",
        "sin",
        "insurance",
        "customer",
        "student",
        "badge",
        "social",
        "user",
    ]
)
_ID_WORDS_SORTED = sorted(_ID_WORDS)
_NOT_NAMES = frozenset(
    [
        "The",
        "This",
        "That",
        "These",
        "Those",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
        "New",
        "Old",
        "North",
        "South",
        "East",
        "West",
        "Customer",
        "Service",
        "Support",
        "Team",
        "Department",
        "Street",
        "Avenue",
        "Road",
        "Bank",
        "Company",
        "Inc",
        "Ltd",
        "Corp",
        "University",
        "College",
        "School",
        "Hospital",
        "Center",
        "Centre",
        "City",
        "County",
        "State",
        "United",
        "America",
        "American",
        "European",
        "Google",
        "Microsoft",
        "Apple",
        "Amazon",
        "Please",
        "Thanks",
        "Thank",
        "Dear",
        "Best",
        "Kind",
        "Regards",
        "Hello",
        "Hi",
        "Our",
        "Your",
        "My",
        "His",
        "Her",
        "Their",
        "Its",
        "We",
        "You",
        "They",
        "Credit",
        "Card",
        "Account",
        "Number",
        "Email",
        "Phone",
        "Address",
        "Order",
        "Invoice",
        "Payment",
        "Social",
        "Security",
        "Health",
        "Insurance",
        "Medical",
        "Record",
        "Mount",
        "Lake",
        "River",
        "Park",
        "Internet",
        "Web",
        "Data",
        "Information",
        "Report",
        "Policy",
        "Office",
        "Home",
        "Human",
        "Resources",
    ]
)
# Common first names (US and UK usage): a capitalised run that starts with one is a person
# even without a cue word.
_FIRST_NAMES = frozenset(
    line
    for line in resources.files("slowleak.streams.core.guardrails")
    .joinpath("data", "first_names.txt")
    .read_text(encoding="utf-8")
    .splitlines()
    if line and not line.startswith("#")
)
_DIGIT = re.compile(r"\d")
_SSN_SHAPE = re.compile(r"^\d{3}-\d{2}-\d{4}$")
_DATE_LIKE = re.compile(
    r"^(?:\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{4})(?:\s\d{1,2})?$"
)
_STREET = re.compile(
    r"\b\d{1,6}(?:[ ][A-Z][A-Za-z.'-]*){1,4}[ ](?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd"
    r"|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|Square|Sq|Parkway|Pkwy|Highway|Hwy"
    r"|Circle|Cir|Trail)\b\.?(?:,?[ ](?:Apt\.?|Suite|Unit)[ ]\d+)?"
)


# Where a street address may start (a house number, a capitalised word): ``_STREET`` is tried
# there only.
_STREET_START = re.compile(r"\d{1,6} [A-Z]")


@dataclass(frozen=True, slots=True)
class PiiMatch:
    """One validated piece of personal data: its kind and ``[start, end)`` in the text."""

    kind: str
    start: int
    end: int


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum of a string of digits (separators are ignored).

    >>> luhn_valid("4539 1488 0343 6467"), luhn_valid("4539 1488 0343 6468")
    (True, False)
    """
    nums = [int(c) for c in digits if c.isdigit()]
    if len(nums) < 2:
        return False
    total = 0
    for i, n in enumerate(reversed(nums)):
        if i % 2:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return total % 10 == 0


def iban_valid(iban: str) -> bool:
    """ISO 13616: move the first four characters to the end, letters to 10..35, mod 97 == 1.

    >>> iban_valid("GB82 WEST 1234 5698 7654 32"), iban_valid("GB82 WEST 1234 5698 7654 33")
    (True, False)
    """
    s = iban.replace(" ", "").upper()
    if not 15 <= len(s) <= 34 or not s[:2].isalpha() or not s[2:4].isdigit() or not s.isalnum():
        return False
    rearranged = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def verhoeff_valid(digits: str) -> bool:
    """The Verhoeff checksum (Aadhaar numbers carry one)."""
    check = 0
    for i, c in enumerate(reversed([int(c) for c in digits if c.isdigit()])):
        check = _VERHOEFF_D[check][_VERHOEFF_P[i % 8][c]]
    return check == 0


def _ssn_valid(area: str, group: str, serial: str) -> bool:
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def _ipv4_valid(text: str) -> bool:
    parts = text.split(".")
    return all(int(p) <= 255 and (p == "0" or not p.startswith("0")) for p in parts)


def _card_grouping(value: str) -> bool:
    """Cards are written unseparated or in groups of four (Amex 4-6-5): "57 320 704 99 96" is
    grouped as a phone number is."""
    groups = re.split(r"[ -]", value)
    if len(groups) == 1:
        return True
    sizes = [len(g) for g in groups]
    return all(n == 4 for n in sizes[:-1]) or sizes[:2] == [4, 6]


def _is_phone(text: str, start: int, value: str) -> bool:
    number = re.split(r"\s?(?:x|ext)", value)[0]
    digits = sum(c.isdigit() for c in number)
    if not 7 <= digits <= 15 or _DATE_LIKE.match(value) or _SSN_SHAPE.match(value):
        return False
    if _IP_VERSION.search(text, max(0, start - 12), start):  # "version 10.2.3.4567"
        return False
    parts = re.findall(r"\d+", number)
    # "0341 8387176": a trunk-prefixed area code and a subscriber number read as a phone.
    area_code = len(parts) == 2 and parts[0].startswith("0") and 2 <= len(parts[0]) <= 5
    if len(parts) <= 2 and "+" not in number and "(" not in number and not area_code:
        end = start + len(value)
        if _FOLLOWED_BY_NAME.match(text, end):  # "at 17151 2450 Crown St" is an address
            return False
        if _PHONE_AFTER.match(text, end):
            return True
        lo = max(0, start - 40)
        return (
            _PHONE_CUE.search(text, lo, start) is not None
            and _NOT_PHONE_LABEL.search(text, lo, start) is None
        )
    if area_code:  # "account no. 0123 4567890" is the account's
        return _NOT_PHONE_LABEL.search(text, max(0, start - 40), start) is None
    return True


def _may_follow_cue(text: str, start: int) -> bool:
    """Whether one of the last two words before ``start`` is a cue word of ``_PERSON_CUE``: a
    cheap test that lets most capitalised runs skip the regex."""
    last = text[max(0, start - 30) : start].translate(_PUNCTUATION_TO_SPACE).split()[-2:]
    return any(w.lower() in _CUE_WORDS for w in last)


def find_pii(text: str, *, addresses: bool = True, persons: bool = True) -> list[PiiMatch]:
    """Every validated PII value in ``text``, sorted by position, without overlaps."""
    found: list[PiiMatch] = []
    taken: list[tuple[int, int]] = []

    def add(kind: str, start: int, end: int) -> None:
        if any(start < t_end and t_start < end for t_start, t_end in taken):
            return
        taken.append((start, end))
        found.append(PiiMatch(kind, start, end))

    # Cheap gates first: most answers hold no long number, no "@", no id label, no street word.
    has_digit = _DIGIT.search(text) is not None
    long_number = has_digit and _LONG_NUMBER.search(text) is not None
    if long_number:
        for m in _IBAN.finditer(text):
            # The pattern may run on into the next word ("GB82 WEST ... 32 and"): shorten it a
            # group at a time until the checksum holds.
            value = m.group()
            while len(value.replace(" ", "")) >= 15:
                if iban_valid(value):
                    add("iban", m.start(), m.start() + len(value))
                    break
                if " " not in value:
                    break
                value = value.rsplit(" ", 1)[0]
        for m in _CARD.finditer(text):
            digits = re.sub(r"\D", "", m.group())
            if (
                _card_grouping(m.group())
                and (13 <= len(digits) <= 19 or (len(digits) == 12 and digits[:2] in _MAESTRO_12))
                and luhn_valid(digits)
                and len(set(digits)) > 2
            ):
                add("card", m.start(), m.end())
        for m in _SSN.finditer(text):
            if _ssn_valid(m.group(1), m.group(3), m.group(4)):
                add("ssn", m.start(), m.end())
    if "@" in text:
        for m in _EMAIL.finditer(text):
            add("email", m.start(), m.end())
    if has_digit and _IPV4_GATE.search(text):
        for m in _IPV4.finditer(text):
            if _ipv4_valid(m.group()) and not _IP_VERSION.search(
                text, max(0, m.start() - 12), m.start()
            ):
                add("ip_address", m.start(), m.end())
    if text.count(":") >= 2 and _IPV6_GATE.search(text):
        for m in _IPV6.finditer(text):
            if sum(c.isdigit() for c in m.group()) >= 2:
                add("ip_address", m.start(), m.end())
    if long_number:
        for m in _PHONE.finditer(text):
            if _is_phone(text, m.start(), m.group()):
                add("phone", m.start(), m.end())
        for m in _EIN.finditer(text):
            add("id_number", m.start(), m.end())
        for m in _AADHAAR.finditer(text):
            if verhoeff_valid(m.group()):
                add("id_number", m.start(), m.end())
    if has_digit:
        # Tried at each occurrence of a label word: searching the whole text costs ~100 us.
        lower = text.lower()
        for word in _ID_WORDS_SORTED:
            pos = lower.find(word)
            while pos >= 0:
                if pos == 0 or not lower[pos - 1].isalnum():
                    labelled = _ID.match(text, pos)
                    if labelled is not None:
                        add("id_number", labelled.start("id"), labelled.end("id"))
                pos = lower.find(word, pos + len(word))
    if has_digit and addresses:
        for gate in _STREET_START.finditer(text):
            street = _STREET.match(text, gate.start())
            if street is not None:
                add("street_address", street.start(), street.end())
    if persons:
        for m in _NAME_RUN.finditer(text):
            start = m.start()
            if start and (text[start - 1].isalnum() or text[start - 1] == "_"):
                continue  # inside a word ("McDonald")
            parts = m.group("name").split()
            while parts and (  # "Dear Maria Keller", "Yesterday Maria Keller": it starts later
                parts[0] in _NOT_NAMES
                or (len(parts) == 3 and parts[0] not in _FIRST_NAMES and parts[1] in _FIRST_NAMES)
            ):
                start = text.index(parts[1], start + len(parts[0])) if len(parts) > 1 else m.end()
                parts = parts[1:]
            if len(parts) < 2 or any(w in _NOT_NAMES for w in parts):
                continue
            possessive = text.startswith("'s", m.end())
            if (
                possessive
                or parts[0] in _FIRST_NAMES
                or (
                    _may_follow_cue(text, start)
                    and _PERSON_CUE.search(text, max(0, start - 30), start) is not None
                )
            ):
                add("person", start, m.end())
    found.sort(key=lambda m: m.start)
    return found
