"""``pii_leak``: personal data in a model's answer (and, optionally, in the user's input).

Each match is validated before it counts: payment cards by the Luhn checksum, IBANs by ISO 13616
mod-97, US SSNs by their reserved ranges, IPv4 octets by range. Overlaps are resolved in the order
IBAN > card > SSN > e-mail > IP > phone > labelled id > user name > street address > person, so a
card number is never also a phone. A phone is a grouping that national numbering plans use, read
whole (never a part of a longer run of digits), and not an amount, a date, years, an IP address
or a number labelled as something else; a short one (one or two groups) also needs a word that
says it is a phone, before or after it, or to stand alone in a field or a list. Names are found
where the text says a person is meant (after a title, "patient", "by", "Dear", "my name is"...;
a listed given name as a speaker or a subject at a line's start or before a possessive) or where
a run of capitalised words starts with a listed given name (``data/first_names.txt``): a lexical
heuristic, not a name model.

>>> [(m.kind, m.start, m.end) for m in find_pii("Mail jo@example.org or call 212-555-0143.")]
[('email', 5, 19), ('phone', 28, 40)]
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from importlib import resources

from slowleak.streams.core.guardrails._text import non_ascii

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
# The patterns of numbers start with a digit and look behind it only then: ``re`` skips to the
# digits of a text instead of trying the look-behind at every position (same matches).
_CARD = re.compile(r"\d(?<![\w+-]\d)[ -]?(?:\d[ -]?){10,17}\d(?![\w-])")
# 12-digit Maestro cards; other 12-digit numbers are too often something else.
_MAESTRO_12 = ("50", "56", "57", "58", "63", "67")
_IBAN = re.compile(r"\b[A-Za-z]{2}\d{2}(?:[ ]?[A-Za-z0-9]){11,30}\b")
_SSN = re.compile(r"(\d(?<![\d-]\d)\d{2})([- ])(\d{2})\2(\d{4})(?![\d-])")
_IPV4 = re.compile(r"(?=\d)(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?!\d|\.\d)")  # see ``_PHONE``
_IPV6 = re.compile(
    r"(?<![:\w])(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}(?![:\w])"
    r"|(?<![:\w])(?:[0-9A-Fa-f]{1,4}:){1,6}(?::[0-9A-Fa-f]{1,4}){1,6}(?![:\w])"
)
# A phone number: an optional country code (+CC, (+CC), +(CC)), an optional trunk digit before a
# parenthesised area code ("(73)/681-9303" too) or an area code and " / " ("089 / 123 456"), then
# groups of digits separated by one space, dot, dash or slash, 6 to 15 digits in all, an optional
# extension ("x123", "X123", "ext. 45"). "Tel.0490 75 40 81": a dot after a word is no part of a
# number. It never ends right before a digit, or before "-", "/", ":" or "." and a digit, so a
# run of dashed groups is not cut short ("555-201-7788-99"); a word stuck to its end
# ("81Email:") is checked by ``_is_phone``.
# The leading look-ahead (a match starts with "+", "(" or a digit) changes no match; ``re`` then
# skips to those characters, about twice as fast on text with many numbers.
_PHONE = re.compile(
    r"(?=[+(\d])(?<![\w+/-])(?<![\d.]\.)(?:(?:\+\d{1,3}|\(\+\d{1,3}\)|\+\(\d{1,3}\))[ .-]?)?"
    r"(?:\d{1,2}[ .-]?(?=\())?(?:\(\d{1,5}\)(?:[ ./-]|/ )?|0\d{1,4} / )?"
    r"(?:\d{1,4}(?:[ .-]|/ ?)?){1,5}\d{2,4}"
    r"(?:\s?(?:[xX]|[eE]xt\.?|[eE]xtension)\s?\d{1,5})?(?!\d|[/:.-]\d)"
)
# A number of one or two digit groups is a phone only after a word that says so (not after
# "order number", "account no." and the like)...
_PHONE_CUE = re.compile(
    r"(?:\b(?:(?:phon|call|dial|text|ring|reach|contact)(?:e|s|es|ed|ing|led|ling)?|mobile|cell"
    r"|tel|fax|desk|whatsapp|sms|registered|telefon|telephone|tlf|mob|ph|handy|txt|callback"
    r"|hotline|landline|messag(?:e|es|ing)|voicemail|pager"
    r"|(?:office|phone|direct|land|hot|help|support|main|work|home)\s?line|number|no\.?|nr\.?)\b"
    r"(?:[^\n\d]{0,12}|[^\n\d.!?;]{0,28}\b(?:on|at|is|be|to|via|under)|[^\n\d.!?;]{0,40}:)"
    r"\n?\s*$|\b(?:at|[TMPF]\s?:|(?:me|us|him|her|them|i'm|we're|he's|she's)\s+on)\s*$)",
    re.IGNORECASE,
)
_NOT_PHONE_LABEL = re.compile(
    r"(?i)\b(?:order|tracking|account|acct|invoice|reference|ref|serial|model|policy|case|ticket"
    r"|id|member|card|routing|licen[cs]e|passport|security|tax|insurance|patient|employee"
    r"|student|customer|confirmation|booking|flight|transaction|item|part|product|version|build"
    r"|batch|lot|record|registration|vat|iban|sort|bank|document|file|room|house|street)"
    r"\s+(?:number|no\.?|nr\.?|#)"
)
# A label right before a number that names something other than a phone ("Serial no. 4455-6677-
# 8899", "Meeting ID: 873 2210 4471", "Suite 501"), whatever the grouping.
_ID_LABEL_BEFORE = re.compile(
    r"(?i)\b(?:order|tracking|invoice|reference|ref|serial|model|part|lot|batch|ticket|case"
    r"|confirmation|booking|transaction|item|product|version|build|id|meeting|isbn|ean|upc|doi"
    r"|apt|apartment|suite|unit|box|floor|room|building|bldg|licen[cs]e|passport|account|acct"
    r"|routing|policy|member|customer|patient|employee|student|record|registration|patent)"
    r"\.?(?:\s+(?:number|no|nr|num|id|code))?\.?(?:\s+(?:is|was))?\s*[:#=]?\s*$"
)
# The words ``_ID_LABEL_BEFORE`` may end with (lower-cased): tried first, as a cheap test.
_ID_LABEL_LAST = (
    "order tracking invoice reference ref serial model part lot batch ticket case confirmation"
    " booking transaction item product version build id meeting isbn ean upc doi apt apartment"
    " suite unit box floor room building bldg license licence passport account acct routing"
    " policy member customer patient employee student record registration patent number no nr"
    " num code is was"
)
_ID_LABEL_LAST_WORDS = frozenset(_ID_LABEL_LAST.split())
# ... or before words that say so ("5403926876 is my cell", "0490 75 40 81 (mobile)").
_PHONE_AFTER = re.compile(
    r"(?:\s+(?:(?:is|as|was)\s+)?(?:(?:my|his|her|their|our|your|the|a)\s+)?"
    r"(?:(?:work|home|office|personal|direct|new|old|main|private|business|mobile)\s+)?"
    r"(?:phone|cell|mobile|callback|landline|fax|telephone|hotline|whatsapp)\b"
    r"|\s+(?:is|was)\s+(?:my|his|her|their|our|your|the)\s+(?:(?:direct|new|old|main|private"
    r"|business|home|work|office|own|only)\s+)?(?:number|line)\b(?!\s+of)"
    r"|,?\s+[(-]?\s*(?:(?:my|his|her|their|our|your|that's|that is|it's|it is)\s+){0,2}"
    r"(?:(?:work|home|office|mobile|cell|tel|phone|landline|fax)\b|number\b(?!\s+of)))",
    re.IGNORECASE,
)
# Numbers that are grouped as amounts are ("2 000 000", "1.234.567", "12 345 678 EUR").
_THOUSANDS = re.compile(r"^\d{1,3}(?:([ .'])\d{3})(?:\1\d{3})*$")
_ONE_DIGIT_THOUSANDS = re.compile(r"^(?:(?:19|20)\d\d[ .'])?[1-9][ .']\d{3}(?:[ .']\d{3})*$")
_AMOUNT_AROUND = re.compile(
    r"(?i)\s?(?:%|(?:eur|usd|gbp|chf|sek|nok|dkk|pln|czk|huf|jpy|cny|inr|aud|cad|euros?|dollars?"
    r"|pounds?|francs?|kronor|crowns?|yen|people|persons|inhabitants|residents|units|items|bytes"
    r"|points|votes|visitors|users|copies|tons|tonnes|km|kg|miles|meters|metres)\b)"
)
_CURRENCY_BEFORE = re.compile(r"(?i)(?:[$€£¥₹]|\b(?:eur|usd|gbp|chf|rs)\.?)\s?$")
_YEARS = re.compile(r"^(?:(?:19|20)\d\d[ .-]?)+$")
_IP_LIKE = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")
_DATE_START = re.compile(r"^(?:19|20)\d\d([-./])(?:0?[1-9]|1[0-2])\1")
# Several phones in a row: "555 0199 or 555 0198", "467 3395 / 780 6326".
_PHONE_LIST_JOIN = re.compile(r"(?i)\s*(?:,|;|/|\bor\b|\band\b|,\s*or\b)\s*$")
# A capitalised word after a short number: a street ("at 17151 2450 Crown St"), unless it is
# the next label of a contact block ("Phone: 467 3395 Email: ..."), a day or a month ("call
# 467 3395 Monday to Friday") or a word that starts a sentence.
_FOLLOWED_BY_NAME = re.compile(
    r" +(?!(?:E-?mail|Fax|Mobile|Mob|Cell|Tel|Phone|Web|Website|Address|Office|Home|Work"
    r"|Desk|Ext|Mon|Tue|Tues|Wed|Thu|Thur|Thurs|Fri|Sat|Sun|Monday|Tuesday|Wednesday|Thursday"
    r"|Friday|Saturday|Sunday|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec|January|February"
    r"|March|April|May|June|July|August|September|October|November|December|If|Or|And|But"
    r"|Thanks|Thank|Please|After|Before|Between|Anytime|Ask|Call|Text|Leave|It|This|That"
    r"|We|You|He|She|They|My|Our|Your)\b)[A-ZÀ-ÖØ-ÞĀ-Ž][a-zß-öø-ÿā-ž]"
)
# A street name after the number: "17151 2450 Crown St", "3747 3911 fourth avenue".
_STREET_AFTER = re.compile(
    r"[ \t]+(?:[A-ZÀ-ÖØ-ÞĀ-Ž][\w'.-]*[ \t]+){1,3}(?:Street|St|Avenue|Ave|Road|Rd|Lane|Ln|Drive"
    r"|Dr|Court|Ct|Way|Place|Pl|Boulevard|Blvd|Close|Crescent|Terrace|Square|Sq|Parkway|Highway"
    r"|Circle|Trail|Strasse|Straße|Str|Gade|Vej|Katu|Utca)\b"
    r"|[ \t]+(?:Rue|Via|Calle|Avenida|Rua)\b"
    r"|(?i:[ \t]+(?!(?:on|at|or|and|in|to|from|near|off|by)\b)(?:[a-z]+[ \t]+){1,3}"
    r"(?:street|avenue|road|lane|boulevard|crescent|terrace)\b)"
)
# An identifier after the word that names it: "passport number X1234567", "MRN: 00482913",
# "acct. no. (0012-3456)", "DL# D1234567".
_ID = re.compile(
    r"(?i:\b(?:passport|driver'?s?\s+licen[cs]e|licen[cs]e|account|acct|routing|member(?:ship)?"
    r"|policy|patient|employee|staff|medical\s+record|record|mrn|voter|tax|tin|ein|itin|national"
    r"|aadhaar|aadhar|pan|nhs|sin|insurance|customer|student|badge|social\s+security|user|ssn"
    r"|bank|checking|savings|dl)\.?"
    r"(?:\s+(?:id|identification|number|no\.?|num|#|code|card|account|acct)){0,3}\s*"
    r"(?:is|was|:|#|=|-|ending\s+(?:in|with)|ends\s+(?:in|with))?\s*[\"'(\[]?)"
    r"(?P<id>(?=[A-Za-z0-9-]*\d{3})[A-Z0-9][A-Za-z0-9-]{4,22}(?![\w-])"
    r"|(?=(?:\d ?){6})\d{2,8}(?:[ ]\d{2,8}){1,4}(?![\w-]| \d| [A-Z]))"
)
# A labelled user name: "username: jdoe_84", "login is maria.k7". It needs a digit, "_", "." or
# "@" ("username is required" names none), and the text a digit or "_".
_USERNAME = re.compile(
    r"(?i:(?:user\s*name|login|handle|screen\s*name|account\s*name|user\s*id)\s*"
    r"(?:is|was|:|=|-)?\s*)(?P<id>@?(?=[\w.-]*[\d_.@])[A-Za-z0-9][\w.-]{2,29}(?<![.-]))(?![\w@-])"
)
_USERNAME_WORDS = ("user", "login", "handle", "screen", "account")
# "SSN 123456789", "social security number 123.45.6789": a labelled SSN whatever its separators.
_SSN_LABELLED = re.compile(
    r"(?i:\b(?:ssn|social\s+security(?:\s+(?:number|no\.?|#))?)\s*(?:is|was|:|#)?\s*)"
    r"(?P<ssn>(\d{3})([ .-]?)(\d{2})\3(\d{4}))(?![\w-])"
)
_AADHAAR = re.compile(r"[2-9](?<![\d-][2-9])\d{3}[ -]\d{4}[ -]\d{4}(?![\d-]| \d)")
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
_EIN = re.compile(r"\d(?<![\d-]\d)\d-\d{7}(?![\d-])")
# A person's name where the text says it is one: after a title or a word that introduces a
# person, or before a possessive. Capitalised words only, common non-names excluded.
_UPPER = "A-ZÀ-ÖØ-ÞĀĂĄĆČĎĐĒĖĘĚĞĪĮİŁŃŇŌŐŒŘŚŞŠŢŤŪŮŰŲŹŻŽ"
_LOWER = "a-zß-öø-ÿāăąćčďđēėęěğīįıłńňōőœřśşšţťūůűųźżž"
# "Szöllösy", "McCarthy", "Jean-Luc"; no leading alternatives (they make the scan ~3x slower).
# The lower-case runs never give back a letter (``++``): what may follow one (a capital, "-",
# a space, ":", the end, a word boundary) never matches at a lower-case letter, so the matches
# are the same, and a failed capitalised word is given up at once (the scan is ~2x faster).
_NAME = rf"[{_UPPER}][{_LOWER}]++(?:[{_UPPER}][{_LOWER}]++|-[{_UPPER}][{_LOWER}]++)?"
# No leading ``\b`` (it makes the scan ~2x slower): the caller checks the start of a word.
_NAME_RUN = re.compile(r"(?P<name>" + _NAME + r"(?:\s+[A-Z]\.?)?(?:[ \t]+" + _NAME + r"){1,2})\b")
# One word is a name after a title or "my name is" ("Mrs. Labrie", "named Frank"), and a listed
# given name is one as a speaker at the start of a line ("Nicole: Remember me"), as the subject
# at a line's or a sentence's start ("Luiza is from Oslo") or before a possessive ("Matej's
# address"). Each is searched from its cue, not word by word.
_TITLE_NAME = re.compile(
    r"(?:Mrs?|Ms|Miss|Mx|Dr|Prof)\.?[ \t]+(?P<name>" + _NAME + r")(?![\w'\u2019-])"
)
# Tried at each "name" in the text (a scan for it would cost ~5x more).
_NAMED = re.compile(r"name(?:d|\s+is)[ \t]+(?P<name>" + _NAME + r")(?![\w'\u2019-])")
_SPEAKER = re.compile(r"(?P<name>" + _NAME + r"):")
# A listed name as the subject at a sentence's start: "Katrine is from Oslo", "Scott was".
_SUBJECT = re.compile(
    r"(?P<name>" + _NAME + r") (?:is|was|has|had|spent|said|says|lives|lived|works|worked)\b"
)
# ``_SUBJECT`` after ". ": one scan of the text finds the same as trying it at each ". " (a name
# and a verb hold no ". ", so no match hides another).
_SENTENCE_SUBJECT = re.compile(r"\. " + _SUBJECT.pattern)
_BEFORE_POSSESSIVE = re.compile(r"(?<![\w'\u2019.-])(?P<name>" + _NAME + r")$")
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
_CUE_WORDS_BYTES = frozenset(w.encode() for w in _CUE_WORDS)
# ``_PUNCTUATION_TO_SPACE`` for ASCII bytes; "\x1c" to "\x1f" too, which ``str.split`` splits
# on and ``bytes.split`` does not.
_PUNCTUATION_TO_SPACE_BYTES = bytes(
    32 if chr(c) in string.punctuation or 0x1C <= c <= 0x1F else c for c in range(256)
)
# Searched in ``_shape(text)`` (where a digit is "0"), which holds the same runs of digits and
# ASCII separators as the text, and where ``re`` skips from "0" to "0" much faster.
_SIX_DIGITS_RUN = re.compile(rb"0(?:[ .()/-]{0,3}0){5}")
_LONG_NUMBER = re.compile(rb"0(?:[ .()/-]{0,3}0){6}")
_IPV4_GATE = re.compile(rb"0\.0{1,3}\.0")
# Twelve digits, each pair split by at most one " " or "-": in every match of ``_CARD``.
_CARD_GATE = re.compile(rb"0(?:[ -]?0){11}")
# A hex digit, ":", up to four hex digits and ":". Written to start at the first ":", with the
# hex digit looked behind for (found in the same texts): ``re`` then skips from colon to colon.
_IPV6_GATE = re.compile(r":(?<=[0-9A-Fa-f]:)[0-9A-Fa-f]{0,4}:")
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
        "ssn",
        "bank",
        "checking",
        "savings",
        "dl",
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


def _name_list(filename: str) -> frozenset[str]:
    return frozenset(
        line
        for line in resources.files("slowleak.streams.core.guardrails")
        .joinpath("data", filename)
        .read_text(encoding="utf-8")
        .splitlines()
        if line and not line.startswith("#")
    )


# Given names (common US and UK ones, and those several of Faker's locales share): a capitalised
# run that starts with one is a person even without a cue word.
_FIRST_NAMES = _name_list("first_names.txt")
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
# there only. Searched in ``_shape(text)`` (``\d{1,6} [A-Z]`` there), where ``re`` skips from
# digit to digit much faster.
_STREET_START = re.compile(rb"00{0,5} A")


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


_EXTENSION = re.compile(r"\s?(?:[xX]|[eE]xt)")
_SEPARATOR = re.compile(r"\d([ ./-])\d")
_GLUED_TAIL = re.compile(r"(.*\d) \d{1,2}")


def _trim_glued(value: str) -> str:
    """A short group after a space, where every other group is joined by dashes or dots, is not
    part of the number: "555-201-7788 24 hours"."""
    if " " not in value[-4:-1]:
        return value
    tail = _GLUED_TAIL.fullmatch(value)
    if tail is None:
        return value
    head = tail.group(1)
    seps = _SEPARATOR.findall(head)
    if len(seps) >= 2 and " " not in seps and sum(c.isdigit() for c in head) >= 7:
        return head
    return value


def _is_amount(text: str, start: int, number: str) -> bool:
    """Grouped as amounts are: "2 000 000", "1.234.567", "12 345 678 EUR", "$1 299 999"."""
    if _ONE_DIGIT_THOUSANDS.match(number):
        return True
    thousands = _THOUSANDS.match(number)
    if thousands is None:
        return False
    return (
        thousands.group(1) in ".'"
        or _AMOUNT_AROUND.match(text, start + len(number)) is not None
        or _CURRENCY_BEFORE.search(text, max(0, start - 5), start) is not None
    )


# Two groups grouped as subscriber numbers are ("467 3395", "9469 9966", "99 577450"), standing
# alone in a field or a list: after ":", ",", "(", "|", " - ", a tab or a line break, before one
# of them or the end.
_PHONE_TWO_GROUPS = frozenset([(2, 6), (3, 4), (3, 5), (4, 4), (5, 5), (6, 5)])
_SIX_DIGITS = re.compile(r"^\d\d([ .-])\d\d\1\d\d$")
_STRONG_PHONE_CUE = re.compile(
    r"(?i)\b(?:phone|tel|telephone|mobile|cell|fax|call|dial|ring|text|whatsapp|sms)\b"
    r"[^\n\d]{0,12}\n?\s*$"
)
_FOUR_DIGIT_GROUPS = re.compile(r"\d{4}(?:[ -]\d{4}){3}")
_NATIONAL_NUMBER = re.compile(r"^(?:1?[2-9]\d\d[2-9]\d{6}|0[1-9]\d{7,9})$")
_FIELD_BEFORE = re.compile(r"(?:^|[:,(\n\t|]|[ \t][-\u2013\u2014])[ \t]*$")
_FIELD_AFTER = re.compile(r"[ \t]*(?:$|[\n\t,;)|]|[.!?](?:\s|$)|[-\u2013\u2014][ \t])")


def _listed_phone(text: str, start: int, end: int, parts: list[str]) -> bool:
    if len(parts) == 1:
        # "5403926876", "0612345678": a national number (NANP, or a trunk 0 and 9 to 11 digits)
        # with some variety in its digits.
        value = parts[0]
        if not _NATIONAL_NUMBER.match(value) or len(set(value)) < 4:
            return False
    elif (len(parts[0]), len(parts[1])) not in _PHONE_TWO_GROUPS or parts[0][:2] in ("19", "20"):
        return False
    return (
        _FIELD_BEFORE.search(text, max(0, start - 3), start) is not None
        and _FIELD_AFTER.match(text, end) is not None
    )


def _labelled_as_other(text: str, start: int) -> bool:
    """Whether ``_ID_LABEL_BEFORE`` ends at ``start``; its last word is looked at first."""
    before = text[max(0, start - 30) : start]
    last = before.rstrip(" \t:#=.").rpartition(" ")[2].lower()
    if last not in _ID_LABEL_LAST_WORDS:
        return False
    return _ID_LABEL_BEFORE.search(before) is not None


def _is_phone(text: str, start: int, value: str, *, after_phone: bool = False) -> bool:
    end = start + len(value)
    # "5403926876abc" is a token; "0490 75 40 81Email:" a number with a word stuck to it.
    if (
        end < len(text)
        and (text[end].isalnum() or text[end] == "_")
        and (not _SEPARATOR.search(value) or text[end].isdigit())
    ):
        return False
    number = _EXTENSION.split(value)[0]
    digits = sum(c.isdigit() for c in number)
    if digits == 6 and _SIX_DIGITS.match(value):  # Greenland, the Faroes: "32 45 67"
        return _STRONG_PHONE_CUE.search(text, max(0, start - 24), start) is not None
    if (
        not 7 <= digits <= 15
        or _DATE_LIKE.match(value)
        or _SSN_SHAPE.match(value)
        or _DATE_START.match(value)
    ):
        return False
    if _IP_VERSION.search(text, max(0, start - 12), start):  # "version 10.2.3.4567"
        return False
    lo = max(0, start - 40)
    # Without a country code or a parenthesised area code: not before a street name, not an IP
    # address, years, an amount or a number labelled as something else.
    if (
        "+" not in number
        and "(" not in number
        and (
            _STREET_AFTER.match(text, end)
            or _IP_LIKE.match(number)
            or _YEARS.match(number)
            or _is_amount(text, start, number)
            or _labelled_as_other(text, start)
        )
    ):
        return False
    parts = re.findall(r"\d+", number)
    # "0341 8387176": a trunk-prefixed area code and a subscriber number read as a phone.
    area_code = len(parts) == 2 and parts[0].startswith("0") and 2 <= len(parts[0]) <= 5
    if len(parts) <= 2 and "+" not in number and "(" not in number and not area_code:
        if _FOLLOWED_BY_NAME.match(text, end):  # "at 17151 2450 Crown St" is an address
            return False
        if after_phone or _PHONE_AFTER.match(text, end):
            return True
        if _listed_phone(text, start, end, parts):
            return True
        cue = _PHONE_CUE.search(text, lo, start)
        return cue is not None and not _labelled_after(text, cue.start(), start)
    if area_code:  # "account no. 0123 4567890" is the account's
        return not _labelled_after(text, lo, start)
    return True


def _labelled_after(text: str, lo: int, start: int) -> bool:
    """Whether a label that is not a phone's ("order number", "account no.") stands between
    ``lo`` (a phone word, or the start of the window) and the number."""
    return _NOT_PHONE_LABEL.search(text, lo, start) is not None


# Digits to "0", ASCII capitals to "A", ASCII small letters to "a", other bytes unchanged.
_SHAPE_TABLE = bytes.maketrans(
    b"123456789" + string.ascii_uppercase.encode() + string.ascii_lowercase.encode(),
    b"0" * 9 + b"A" * 26 + b"a" * 26,
)
# ``_shape`` with capitals made small: two letters and two digits ("aa00") start every IBAN.
_CAPITAL_TO_SMALL = bytes.maketrans(b"A", b"a")
# Four digits, a space or "-", four, a space or "-", four: the shapes of an Aadhaar number.
_AADHAAR_SHAPES = (b"0000 0000 0000", b"0000-0000-0000", b"0000 0000-0000", b"0000-0000 0000")


def _shape(text: str) -> bytes:
    """``text`` in UTF-8 with each digit (each character ``\\d`` matches) written "0" and each
    ASCII letter "A" (capital) or "a" (small), so that "a digit", "three digits in a row", "a
    digit, a space and a capital"... are ``bytes`` searches, much faster than a pattern's. No
    other character gives a "0", "A" or "a" (the bytes of a non-ASCII character are >= 0x80)."""
    raw = text.encode("utf-8", "surrogatepass")
    # Digits of other scripts ("٣", "߃") are written "0" first.
    if not text.isascii() and _DIGIT.search(non_ascii(raw)) is not None:
        raw = _DIGIT.sub("0", text).encode("utf-8", "surrogatepass")
    return raw.translate(_SHAPE_TABLE)


def _listed_name(word: str) -> bool:
    return word in _FIRST_NAMES and word not in _NOT_NAMES


def _in_url_authority(text: str, start: int) -> bool:
    """Whether ``start`` follows ``scheme://`` in the same word: ``admin:pw@db.internal`` of a
    connection string is credentials and a host (``secret_leak``'s), not an e-mail address."""
    before = text[max(0, start - 200) : start]
    if "://" not in before or before[-1:].isspace():
        return False
    word = before.rsplit(None, 1)[-1]
    scheme = word.find("://")
    return scheme >= 0 and "/" not in word[scheme + 3 :]


def _may_follow_cue(text: str, start: int) -> bool:
    """Whether one of the last two words before ``start`` is a cue word of ``_PERSON_CUE``: a
    cheap test that lets most capitalised runs skip the regex."""
    before = text[max(0, start - 30) : start]
    if before.isascii():  # the same on bytes, where ``translate`` is much faster
        last_b = before.encode().translate(_PUNCTUATION_TO_SPACE_BYTES).lower().split()[-2:]
        return not _CUE_WORDS_BYTES.isdisjoint(last_b)
    last = before.translate(_PUNCTUATION_TO_SPACE).split()[-2:]
    return any(w.lower() in _CUE_WORDS for w in last)


def find_pii(text: str, *, addresses: bool = True, persons: bool = True) -> list[PiiMatch]:
    """Every validated PII value in ``text``, sorted by position, without overlaps."""
    found: list[PiiMatch] = []
    taken: list[tuple[int, int]] = []

    def add(kind: str, start: int, end: int) -> None:
        for t_start, t_end in taken:
            if start < t_end and t_start < end:
                return
        taken.append((start, end))
        found.append(PiiMatch(kind, start, end))

    # Cheap gates first: most answers hold no long number, no "@", no id label, no street word.
    shape = _shape(text)
    n_digits = shape.count(b"0")
    has_digit = n_digits > 0
    # Six digits in a row (separators allowed) are the least a phone has; seven the least of
    # every other number searched for.
    six = _SIX_DIGITS_RUN.search(shape) if n_digits >= 6 else None
    long_number = (
        six is not None and n_digits >= 7 and _LONG_NUMBER.search(shape, six.start()) is not None
    )
    # Only the blocks that need a digit or "_" read it. Its offsets are the text's: "İ" (the
    # one character whose lower case is two) is lowered as "I" is.
    lower = text.replace("\u0130", "I").lower() if has_digit or "_" in text else ""
    if long_number:
        if b"aa00" in shape.translate(_CAPITAL_TO_SMALL):  # see ``_CAPITAL_TO_SMALL``
            for m in _IBAN.finditer(text):
                # The pattern may run on into the next word ("GB82 WEST ... 32 and"): shorten it
                # a group at a time until the checksum holds.
                value = m.group()
                while len(value.replace(" ", "")) >= 15:
                    if iban_valid(value):
                        add("iban", m.start(), m.start() + len(value))
                        break
                    if " " not in value:
                        break
                    value = value.rsplit(" ", 1)[0]
        if _CARD_GATE.search(shape):
            for m in _CARD.finditer(text):
                digits = re.sub(r"\D", "", m.group())
                if (
                    _card_grouping(m.group())
                    and (
                        13 <= len(digits) <= 19 or (len(digits) == 12 and digits[:2] in _MAESTRO_12)
                    )
                    and luhn_valid(digits)
                    # Not a filler ("0000 0000 0000 0000"); test cards (4111 1111 1111 1111)
                    # count: one in an answer is worth seeing.
                    and len(set(digits)) > 1
                ):
                    add("card", m.start(), m.end())
        # Three digits, two and four, split by the same " " or "-": every SSN's shape.
        if b"000-00-0000" in shape or b"000 00 0000" in shape:
            for m in _SSN.finditer(text):
                if _ssn_valid(m.group(1), m.group(3), m.group(4)):
                    add("ssn", m.start(), m.end())
        if "ssn" in lower or "social" in lower:
            for m in _SSN_LABELLED.finditer(text):
                if _ssn_valid(m.group(2), m.group(4), m.group(5)):
                    add("ssn", m.start("ssn"), m.end("ssn"))
    if "@" in text:
        for m in _EMAIL.finditer(text):
            if not _in_url_authority(text, m.start()):
                add("email", m.start(), m.end())
    if _IPV4_GATE.search(shape):
        for m in _IPV4.finditer(text):
            if _ipv4_valid(m.group()) and not _IP_VERSION.search(
                text, max(0, m.start() - 12), m.start()
            ):
                add("ip_address", m.start(), m.end())
    if text.count(":") >= 2 and _IPV6_GATE.search(text):
        for m in _IPV6.finditer(text):
            if sum(c.isdigit() for c in m.group()) >= 2:
                add("ip_address", m.start(), m.end())
    if six is not None:
        last_phone = -1
        for m in _PHONE.finditer(text):
            if m.end() - m.start() < 6:  # fewer than six digits, never a phone (``_is_phone``)
                continue
            start, value = m.start(), _trim_glued(m.group())
            if (
                sum(c.isdigit() for c in value) > 15
                and " " in value
                and not _FOUR_DIGIT_GROUPS.match(value)  # a card that failed its checksum
            ):
                # Too long for one number: a postal code or a house number run into the phone
                # ("Oslo 012345 0490 75 40 81"). Try without the first group.
                tail = _PHONE.match(text, start + value.index(" ") + 1)
                if tail is not None:
                    start, value = tail.start(), _trim_glued(tail.group())
            after_phone = last_phone >= 0 and (
                _PHONE_LIST_JOIN.match(text[last_phone:start]) is not None
            )
            if _is_phone(text, start, value, after_phone=after_phone):
                add("phone", start, start + len(value))
                last_phone = start + len(value)
    if long_number:
        if b"00-0000000" in shape:  # every EIN's shape
            for m in _EIN.finditer(text):
                add("id_number", m.start(), m.end())
        if any(s in shape for s in _AADHAAR_SHAPES):
            for m in _AADHAAR.finditer(text):
                if verhoeff_valid(m.group()):
                    add("id_number", m.start(), m.end())
    # Every labelled id has three digits in a row, or six in groups of two ("12 34 56"), at or
    # after its label: a label starts at the latest where the last of them starts (an index of
    # ``shape``, in bytes, is at least that of the character).
    last_id_digits = max(shape.rfind(b"000"), shape.rfind(b"00 00 00"))
    if last_id_digits >= 0:
        # Tried at each occurrence of a label word: searching the whole text costs ~100 us.
        for word in _ID_WORDS_SORTED:
            end = last_id_digits + len(word)
            pos = lower.find(word, 0, end)
            while pos >= 0:
                if pos == 0 or not lower[pos - 1].isalnum():
                    labelled = _ID.match(text, pos)
                    if labelled is not None:
                        add("id_number", labelled.start("id"), labelled.end("id"))
                pos = lower.find(word, pos + len(word), end)
    if has_digit or "_" in text:
        for word in _USERNAME_WORDS:
            pos = lower.find(word)
            while pos >= 0:
                if pos == 0 or not lower[pos - 1].isalnum():
                    user = _USERNAME.match(text, pos)
                    if user is not None:
                        add("id_number", user.start("id"), user.end("id"))
                pos = lower.find(word, pos + len(word))
    if addresses and b"0 A" in shape:  # a digit, a space and a capital start every address
        ascii_text = len(shape) == len(text)  # then a byte of ``shape`` per character
        for gate in _STREET_START.finditer(shape):
            at = gate.start()
            if not ascii_text:  # the characters before the match
                at = len(shape[:at].decode("utf-8", "surrogatepass"))
            street = _STREET.match(text, at)
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
            if len(parts) < 2 or not _NOT_NAMES.isdisjoint(parts):
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
        for title in _TITLE_NAME.finditer(text):
            if title.group("name") not in _NOT_NAMES:
                add("person", title.start("name"), title.end("name"))
        pos = text.find("name")
        while pos >= 0:
            if pos == 0 or not text[pos - 1].isalnum():
                named = _NAMED.match(text, pos)
                if named is not None and named.group("name") not in _NOT_NAMES:
                    add("person", named.start("name"), named.end("name"))
            pos = text.find("name", pos + 4)
        pos = 0
        while pos >= 0:  # at each line's start
            if text[pos : pos + 1].isupper():
                speaker = _SPEAKER.match(text, pos) or _SUBJECT.match(text, pos)
                if speaker is not None and _listed_name(speaker.group("name")):
                    add("person", speaker.start(), speaker.end("name"))
            pos = text.find("\n", pos)
            pos = pos + 1 if pos >= 0 else -1
        for subject in _SENTENCE_SUBJECT.finditer(text):  # at each sentence's start
            if _listed_name(subject.group("name")):
                add("person", subject.start("name"), subject.end("name"))
        pos = text.find("'s")
        while pos > 0:
            word_start = max(text.rfind(" ", 0, pos), text.rfind("\n", 0, pos)) + 1
            owner = (
                _BEFORE_POSSESSIVE.search(text, max(0, pos - 30), pos)
                if text[word_start : word_start + 1].isupper()
                else None
            )
            if owner is not None and _listed_name(owner.group("name")):
                add("person", owner.start(), owner.end())
            pos = text.find("'s", pos + 2)
    found.sort(key=lambda m: m.start)
    return found
