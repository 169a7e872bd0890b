from __future__ import annotations

import pytest

from slowleak.streams.core.guardrails.pii import find_pii, iban_valid, luhn_valid


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("4539 1488 0343 6467", True),
        ("4539148803436467", True),
        ("4539 1488 0343 6468", False),
        ("378282246310005", True),  # Amex test number
        ("6011111111111117", True),
        ("0", False),
    ],
)
def test_luhn(number: str, valid: bool) -> None:
    assert luhn_valid(number) is valid


@pytest.mark.parametrize(
    ("iban", "valid"),
    [
        ("GB82 WEST 1234 5698 7654 32", True),
        ("DE89370400440532013000", True),
        ("de89 3704 0044 0532 0130 00", True),
        ("DE89370400440532013001", False),
        ("GB82WEST", False),
        ("1234567890123456", False),
    ],
)
def test_iban_mod_97(iban: str, valid: bool) -> None:
    assert iban_valid(iban) is valid


def _found(text: str) -> list[tuple[str, str]]:
    return [(m.kind, text[m.start : m.end]) for m in find_pii(text)]


def test_spans_are_exact() -> None:
    text = (
        "Write to ana.lopez@example.org, call (212) 555-0143 or wire to "
        "DE89 3704 0044 0532 0130 00."
    )
    matches = find_pii(text)

    assert [(m.kind, m.start, m.end) for m in matches] == [
        ("email", 9, 30),
        ("phone", 37, 51),
        ("iban", 63, 90),
    ]
    assert text[9:30] == "ana.lopez@example.org"
    assert text[63:90] == "DE89 3704 0044 0532 0130 00"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Card 4539 1488 0343 6467 on file", [("card", "4539 1488 0343 6467")]),
        ("SSN: 521-44-9382.", [("ssn", "521-44-9382")]),
        (
            "server at 10.20.30.40 and fe80:0:0:0:200:f8ff:fe21:67cf",
            [
                ("ip_address", "10.20.30.40"),
                ("ip_address", "fe80:0:0:0:200:f8ff:fe21:67cf"),
            ],
        ),
        ("Phone: +44 20 7946 0958", [("phone", "+44 20 7946 0958")]),
        ("passport number X1234567", [("id_number", "X1234567")]),
        ("Ship to 742 Evergreen Terrace, please", [("street_address", "742 Evergreen Terrace")]),
        ("Dear Maria Keller, thanks for writing.", [("person", "Maria Keller")]),
    ],
)
def test_each_kind(text: str, expected: list[tuple[str, str]]) -> None:
    assert _found(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "The meeting is on 2024-03-15 at 10:30 in room 4.",
        "We sold 1234 units for 12.50 each in 2023.",
        "Version 1.2.3.4 of the library fixed it.",
        "Card 4539 1488 0343 6468 fails the checksum.",
        "SSN-like but reserved: 000-12-3456 and 666-12-3456.",
        "Order number 12345 shipped on Monday.",
        "The Eiffel Tower is in Paris.",
    ],
)
def test_no_false_positives(text: str) -> None:
    assert _found(text) == []


def test_address_numbers_are_not_phones() -> None:
    assert _found("The restaurant is at 17151 2450 Crown St.") == [
        ("street_address", "2450 Crown St.")
    ]


def test_card_wins_over_phone() -> None:
    assert _found("pay with 4539-1488-0343-6467") == [("card", "4539-1488-0343-6467")]


# Phone formats and contexts written for these tests (international prefixes, parentheses,
# slashes, extensions, a cue after the number), none taken from an evaluation set.
@pytest.mark.parametrize(
    ("text", "phone"),
    [
        ("Leave a message at +(370) 61234567 please", "+(370) 61234567"),
        ("Phone: (+57) 301 555 0199", "(+57) 301 555 0199"),
        ("Call 8 (912) 345-67-89 after six.", "8 (912) 345-67-89"),
        ("Tel. (03449) 78690", "(03449) 78690"),
        ("My number is 02124/1586834.", "02124/1586834"),
        ("Office: 555.201.7788 extension 42", "555.201.7788 extension 42"),
        ("5403926876 is my cell", "5403926876"),
        ("The number is 0191 4960657.", "0191 4960657"),
        ("Our office line is 4656 3414, ask for Anna.", "4656 3414"),
        ("Please text 16731706690 when you land.", "16731706690"),
    ],
)
def test_phone_formats(text: str, phone: str) -> None:
    assert ("phone", phone) in _found(text)


@pytest.mark.parametrize(
    "text",
    [
        "Order number 12345678 has shipped.",
        "Your tracking number is 1234567890123.",
        "Invoice no. 20231234 is due.",
        "Version 10.2.3.4567 fixes the bug.",
        "The line 1234567 in the log shows an error.",
    ],
)
def test_numbers_that_are_not_phones(text: str) -> None:
    assert [kind for kind, _ in _found(text) if kind == "phone"] == []


def test_phone_grouping_is_not_a_card() -> None:
    # Luhn-valid by chance, but grouped 2-3-3-2-2 as phone numbers are, not 4-4-4-4 as cards.
    assert luhn_valid("57 320 704 99 96")
    assert _found("Contact: 57 320 704 99 96") == [("phone", "57 320 704 99 96")]


def test_common_first_name_starts_a_person_without_a_cue() -> None:
    text = "Yesterday Jennifer Walsh signed the lease; New Delhi Station was busy."

    assert _found(text) == [("person", "Jennifer Walsh")]
