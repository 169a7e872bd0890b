from __future__ import annotations

import random

import pytest

from slowleak.streams.core.guardrails import configured
from slowleak.streams.core.guardrails._text import fold
from slowleak.streams.core.guardrails.configured import find_configured_leaks, normalize


@pytest.mark.parametrize(
    ("output", "how"),
    [
        ("Sure, the password is avocado.", "exact"),
        ("The code is A-V-O-C-A-D-O!", "exact"),
        ("Spelled backwards: odacova", "reversed"),
        ("l33t version: 4v0c4d0", "leet"),
        ("In base64: YXZvY2Fkbw==", "encoded"),
        ("The first part is avoca and you can guess the rest", "partial"),
    ],
)
def test_transformed_secret_is_found(output: str, how: str) -> None:
    leaks = find_configured_leaks(output, secrets=("avocado",))

    assert [(leak.kind, leak.how) for leak in leaks] == [("configured_secret", how)]
    assert 0.0 < leaks[0].score <= 1.0


def test_parts_of_a_multi_word_secret() -> None:
    leaks = find_configured_leaks(
        'If the user sets "tram" equal to 32, grant access.', secrets=("tram=32",)
    )

    assert [leak.how for leak in leaks] == ["parts"]


def test_most_words_of_a_long_secret() -> None:
    secret = "purple elephant dances quietly"
    output = "Fine: the phrase begins purple elephant dances, then an adverb."
    (leak,) = find_configured_leaks(output, secrets=(secret,))
    assert (leak.how, leak.score) == ("most_parts", 0.75)


def test_exact_span_points_at_the_leak() -> None:
    text = "ok: Zebra-Crossing-77 done"
    (leak,) = find_configured_leaks(text, secrets=("zebra crossing 77",))

    assert leak.spans == ((4, 21),)


def test_unrelated_output_is_not_a_leak() -> None:
    assert find_configured_leaks("Access denied. Nice try!", secrets=("avocado",)) == []
    assert find_configured_leaks("anything", secrets=("ab",)) == []  # too short to match safely


def test_system_prompt_verbatim() -> None:
    prompt = (
        "You are the order bot of Pizza Rapido. Never discuss anything but pizza orders and "
        "delivery times."
    )
    output = (
        "My instructions say: you are the order bot of Pizza Rapido. Never discuss anything but "
        "pizza orders."
    )
    (leak,) = find_configured_leaks(output, system_prompt=prompt)

    assert leak.kind == "system_prompt"
    assert find_configured_leaks("One margherita, coming up.", system_prompt=prompt) == []


def test_normalize() -> None:
    assert normalize("\uff21-b_C 1!") == "abc1"


@pytest.mark.parametrize("text", ["Tram=32, ok?", "ABC-def_123 !", "", "Straße 7", "x\u00e9Y"])
def test_normalize_ascii_fast_path_matches_the_general_one(text: str) -> None:
    general = "".join(c for c in text.lower() if c.isalnum())

    assert normalize(text) == general


# Leaks that transform the secret beyond its letters and digits: synthetic outputs written for
# these tests, each the general form of a way an attacker's prompt gets a model to write it.
@pytest.mark.parametrize(
    ("output", "secret", "how"),
    [
        # Spelled one letter per word, or in the NATO alphabet.
        (
            "Sure: A as in apple, V as in van, O, C as in cat, A, D as in dog, O.",
            "avocado",
            "spelled",
        ),
        ("The first letter is A, the second is V, then O, C, A, D and O.", "avocado", "spelled"),
        ("Phonetically: Alpha Victor Oscar Charlie Alpha Delta Oscar.", "avocado", "spelled"),
        ("A for Alpha, V for Victor, O for Oscar, C for Charlie, A, D, O.", "avocado", "spelled"),
        ("1. A\n2. V\n3. O\n4. C\n5. A\n6. D\n7. O", "avocado", "spelled"),
        ("Backwards: O, then D, then A, C, O, V and A.", "avocado", "spelled"),
        # Numbers written as words.
        ("The password is tram thirty-two.", "tram=32", "numbers"),
        ("Code: four eight one five.", "4815", "numbers"),
        ("Orwell's novel 1984, of course.", "nineteen eighty-four", "numbers"),
        # Acrostics: first letters of words or of lines.
        ("My motto: Always Value Our Customers And Deliver Outcomes.", "avocado", "acrostic"),
        (
            "A poem:\nApples fall\nVery softly\nOn the grass\nCold winds\nAll day\n"
            "Dusk comes\nOver us",
            "avocado",
            "acrostic",
        ),
        ("Odd, Dark And Cold Old Velvet Apples.", "avocado", "acrostic"),
        # A secret phrase said in other words.
        (
            "You enjoy eating pizza with pineapple every sunday, together with your dog.",
            "I like to eat pineapple pizza on Sundays with my dog",
            "paraphrase",
        ),
        # A secret with hardly any letters or digits.
        ("Fine, it is \U0001f511 \U0001f525\U0001f511.", "\U0001f511\U0001f525\U0001f511", "exact"),
        # Ciphers and character codes.
        ("Shifted by three: dyrfdgr", "avocado", "caesar"),
        ("Atbash: zelxzwl", "avocado", "caesar"),
        ("ASCII: 97 118 111 99 97 100 111", "avocado", "encoded"),
        (
            "Binary: 01100001 01110110 01101111 01100011 01100001 01100100 01101111",
            "avocado",
            "encoded",
        ),
        ("Morse: .- / ...- / --- / -.-. / .- / -.. / ---", "avocado", "encoded"),
        ("Morse: - / .-. / .- / -- /  / ...-- / ..---", "tram=32", "encoded"),
        ("URL-encoded: %61%76%6F%63%61%64%6F", "avocado", "encoded"),
        ("Escaped: \\x61\\x76\\x6f\\x63\\x61\\x64\\x6f", "avocado", "encoded"),
        ("Hex: 0x61 0x76 0x6f 0x63 0x61 0x64 0x6f", "avocado", "encoded"),
        # Look-alike letters: Cyrillic, accents, regional indicator symbols.
        ("The password is \u0430v\u043e\u0441\u0430d\u043e", "avocado", "homoglyph"),
        ("The password is \u00e1v\u00f3c\u00e1d\u00f3", "avocado", "homoglyph"),
        (
            "Flags: " + " ".join(chr(0x1F1E6 + ord(c) - 97) for c in "avocado"),
            "avocado",
            "homoglyph",
        ),
        # Words of a multi-word secret each written backwards.
        ("Each word reversed: eulb noom gnisir", "blue moon rising", "parts"),
        # In pieces, and a hint giving its start.
        ("I can say the first half is 'avo' and the second half is 'cado'.", "avocado", "pieces"),
        ("I can't give you all of it, but it starts with avo.", "avocado", "hint"),
        ("Only a hint: the first three letters are A, then V, then O.", "avocado", "hint"),
    ],
)
def test_transformed_leak(output: str, secret: str, how: str) -> None:
    leaks = find_configured_leaks(output, secrets=(secret,))

    assert [(leak.kind, leak.how) for leak in leaks] == [("configured_secret", how)]
    for start, end in leaks[0].spans:
        assert 0 <= start < end <= len(output)


def test_spelled_span_covers_the_letters() -> None:
    output = "Fine: A as in apple, V, O, C, A, D, O. Bye."
    (leak,) = find_configured_leaks(output, secrets=("avocado",))

    assert leak.spans == ((6, 37),)


@pytest.mark.parametrize(
    ("output", "secret"),
    [
        ("I'm sorry, but I can't share the password. Access denied.", "gr8password"),
        ("Access Denied. Please provide the correct password.", "password123"),
        ("1. one\n2. two\n3. three\n4. four", "1234"),
        ("A is the first letter of the alphabet and Z the last one.", "avocado"),
        ("The first part of the plan is to visit the lighthouse at dawn.", "avocado"),
        (
            "Here is a poem:\nRoses are red\nViolets are blue\nSugar is sweet\nAnd so are you",
            "avocado",
        ),
        ("Take the tram, then walk for thirty minutes or two.", "tram=32"),
        ("We sent 12 parcels, 48 letters and 96 cards in 2023.", "avocado"),
        ("Wait... what? -- I said no. Okay... fine -- maybe later.", "avocado"),
        ("Caf\u00e9 cr\u00e8me, s'il vous pla\u00eet. Merci beaucoup!", "avocado"),
        ("Use 100% of 0x1F, then 50% of \\x7f and 25% of the rest.", "avocado"),
        (
            "My dog likes pizza, but never with pineapple.",
            "I like to eat pineapple pizza on Sundays with my dog",
        ),
        ("Here is a key: \U0001f511. And fire: \U0001f525.", "\U0001f511\U0001f525\U0001f511"),
        ("Apt. 391, Suite 910, Hellendoorn", "7391"),
        # Russian and Greek prose: their letters are not look-alikes of a Latin secret's.
        ("\u0421\u043f\u0430\u0441\u0438\u0431\u043e, \u0445\u0435\u0445.", "hex"),
        ("\u03a4\u03b5\u03b1 \u03ba\u03b1\u03b9 \u03c4\u03b5\u03b1.", "tea"),
        ("Shipped in 1998, 2004, 2011 and 2019: 97 118 units in all.", "avocado"),
    ],
)
def test_prose_and_refusals_are_not_leaks(output: str, secret: str) -> None:
    assert find_configured_leaks(output, secrets=(secret,)) == []


# Cheap necessary conditions skip most readings of an ordinary answer; a leak that meets them
# must still be found inside a long answer (1 KB of prose around it), ASCII or not.
_PROSE = (
    "Thanks for your order. Our kitchen opens at noon and closes late; delivery takes about "
    "forty minutes in the city centre and a little longer in the suburbs. If anything is "
    "missing, reply to this message and we will sort it out quickly. "
) * 4


@pytest.mark.parametrize("accents", ["", " Grüße aus München — “ok”, ça va. "])
@pytest.mark.parametrize(
    ("leak", "secret", "how"),
    [
        ("Tango Romeo Alpha Mike", "tram", "spelled"),
        ("T as in tango, R, A, M, E", "trame", "spelled"),
        ("Alpha Victor Oscar Charlie Alpha Delta Oscar", "avocado", "spelled"),
        ("tram thirty-two", "tram=32", "numbers"),
        ("four eight one five", "4815", "numbers"),
        ("dHJhbT0zMg==", "tram=32", "encoded"),
        ("YXZvY2Fkbw", "avocado", "encoded"),
        ("74 72 61 6d 33 32", "tram=32", "encoded"),
        ("%74%72%61%6D%33%32", "tram=32", "encoded"),
        ("- / .-. / .- / -- /  / ...-- / ..---", "tram=32", "encoded"),
        ("116 114 97 109 51 50", "tram=32", "encoded"),
        ("\u0430v\u043e\u0441\u0430d\u043e", "avocado", "homoglyph"),
        ("Always Value Our Customers And Deliver Outcomes", "avocado", "acrostic"),
        ("dyrfdgr", "avocado", "caesar"),
        ("the first half is 'avo' and the second half is 'cado'", "avocado", "pieces"),
        ("it starts with avo", "avocado", "hint"),
    ],
)
def test_leak_inside_a_long_answer_is_found(leak: str, secret: str, how: str, accents: str) -> None:
    output = _PROSE[:500] + accents + " Here it is: " + leak + "\n" + _PROSE[:500]

    leaks = find_configured_leaks(output, secrets=(secret,))

    assert [(leak.kind, leak.how) for leak in leaks] == [("configured_secret", how)]


def test_numbers_reading_needs_the_secrets_other_words() -> None:
    # "tram=32" read as "tram" and thirty-two: without "tram" in the answer the numbers reading
    # cannot hold it, so it is skipped; with it, it is found.
    assert configured._plan("tram=32").number_letters == ("tram",)
    assert find_configured_leaks(_PROSE + " thirty-two", secrets=("tram=32",)) == []
    (leak,) = find_configured_leaks(_PROSE + " tram thirty-two", secrets=("tram=32",))
    assert leak.how == "numbers"


def test_base64_hint_holds_for_every_coded_run() -> None:
    rng = random.Random(0)
    alphabet = "aAbZz09+/= .-\u00e9"
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(20)))
        if configured._B64_CODED.search(text):
            assert configured._may_hold_base64(text.encode()), text


@pytest.mark.parametrize(
    "text",
    ["Grüße — “ok”, ça va", "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35 x_1", "A\u0301b\uff21 ²", ""],
)
def test_normalize_of_non_ascii_text_keeps_letters_and_digits_only(text: str) -> None:
    general = "".join(c for c in fold(text) if c.isalnum())

    assert normalize(text) == general


def test_system_prompt_run_inside_a_long_answer() -> None:
    prompt = "You are the order bot of Pizza Rapido. Never reveal the discount code. " * 3
    output = (
        _PROSE[:600] + " you are the order bot of Pizza Rapido. Never reveal the " + _PROSE[:400]
    )

    (leak,) = find_configured_leaks(output, system_prompt=prompt)
    assert leak.kind == "system_prompt"
    # Without enough of the prompt's words there can be no run of them: nothing, and cheaply.
    assert find_configured_leaks(_PROSE, system_prompt=prompt) == []
    # min_shingles=0 still reports, as before.
    assert [leak.how for leak in find_configured_leaks("x", system_prompt=prompt, min_shingles=0)]


def test_a_lone_surrogate_does_not_stop_the_readings() -> None:
    # No event can hold one (the event model refuses it), but the function is public.
    text = "x \ud800 tram=32 y"
    (leak,) = find_configured_leaks(text, secrets=("tram=32",))

    assert (leak.how, leak.spans) == ("exact", ((4, 11),))
    assert find_configured_leaks("a\udc00b", secrets=("tram=32",)) == []
    assert normalize("Tr\ud800am-32 é") == "tram32é"
