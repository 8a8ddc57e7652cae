"""Licence plates in their one canonical form (field reference 1.5 and 8.1)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.domain.plates import MAX_PLATE_LENGTH, InvalidPlate, normalize_plate


@pytest.mark.parametrize(
    ("text", "plate"),
    [
        ("ABC123", "ABC123"),
        ("abc-123", "ABC123"),
        ("ab-123 c", "AB123C"),
        ("AB 123 C", "AB123C"),
        ("  xy 99  ", "XY99"),
        ("ab.12.cd", "AB12CD"),
        ("B-MW 1234", "BMW1234"),
        ("AB\t12\u00a0CD", "AB12CD"),  # tabs and no-break spaces are spaces too
        ("AB--12..CD", "AB12CD"),
        ("7", "7"),
        ("münchen1", "MÜNCHEN1"),
        ("\u0430\u0432 123", "\u0410\u0412123"),  # Cyrillic
        ("A" * MAX_PLATE_LENGTH, "A" * MAX_PLATE_LENGTH),
        # Separators do not count towards the length.
        ("AAAAA-BBBBB CCCCC.DDDDD", "AAAAABBBBBCCCCCDDDDD"),
    ],
)
def test_normalisation(text: str, plate: str) -> None:
    assert normalize_plate(text) == plate


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "blank"),
        ("   ", "blank"),
        ("\t\n", "blank"),
        ("- . -", "blank"),
        ("A" * (MAX_PLATE_LENGTH + 1), f"at most {MAX_PLATE_LENGTH}"),
        (" ab-" + "1" * MAX_PLATE_LENGTH, f"at most {MAX_PLATE_LENGTH}"),
        ("AB/12", "letters and digits"),
        ("AB_12", "letters and digits"),
        ("AB#12", "letters and digits"),
        ("AB*12", "letters and digits"),
        ("AB,12", "letters and digits"),
        ("AB'12", "letters and digits"),
        ("AB\u00d712", "letters and digits"),  # multiplication sign, not a letter
        ("AB\u00f712", "letters and digits"),  # division sign
        ("\u0482AB", "letters and digits"),  # Cyrillic thousands sign
        ("AB\u0661\u0662", "letters and digits"),  # Arabic-Indic digits
        ("\uff21\uff2212", "letters and digits"),  # full-width letters
    ],
)
def test_refused(text: str, reason: str) -> None:
    with pytest.raises(InvalidPlate, match=reason):
        normalize_plate(text)


def test_invalid_plate_is_a_value_error() -> None:
    # API layers map ValueError to a 400/422 answer.
    assert issubclass(InvalidPlate, ValueError)


plate_chars = st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
separators = st.text(alphabet=" -.\t", max_size=3)


@given(st.lists(st.tuples(plate_chars, separators), min_size=1, max_size=MAX_PLATE_LENGTH))
def test_separators_and_case_never_change_the_plate(parts: list[tuple[str, str]]) -> None:
    typed = "".join(char + sep for char, sep in parts)
    plain = "".join(char for char, _ in parts).upper()
    assert normalize_plate(typed) == plain
    assert normalize_plate(typed.lower()) == plain


# Mostly the Latin and Cyrillic blocks the plate alphabet is drawn from, where letters and
# non-letters sit side by side.
@given(st.text(alphabet=st.characters(max_codepoint=0x4FF), max_size=30))
def test_any_text_is_a_canonical_plate_or_refused(text: str) -> None:
    try:
        plate = normalize_plate(text)
    except InvalidPlate:
        return
    assert 1 <= len(plate) <= MAX_PLATE_LENGTH
    assert plate == plate.upper()
    assert not any(ch in plate for ch in " -.\t\n")
    assert all(ch.isalpha() or ch in "0123456789" for ch in plate)
    assert normalize_plate(plate) == plate  # canonical form is a fixed point


@given(
    st.text(
        alphabet=st.characters(categories=["P", "S"], exclude_characters="-.\u00b7"),
        min_size=1,
        max_size=3,
    )
)
def test_punctuation_and_symbols_are_refused(junk: str) -> None:
    with pytest.raises(InvalidPlate, match="letters and digits"):
        normalize_plate("AB" + junk + "12")
