"""Voting, grouping, plate rules and the one-edit match, as pure rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.domain.plate_reads import Observation, PlateRules, ReadGrouper, match, neighbours, vote

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
plates = st.text(alphabet="ABCDEFGHJKLMNPRTUVWXY0123456789", min_size=4, max_size=8)


def obs(text: str, confidence: float, seconds: float = 0) -> Observation:
    return Observation(text=text, confidence=confidence, at=T0 + timedelta(seconds=seconds))


def test_vote_weights_by_confidence():
    result = vote([obs("ABC123", 0.9), obs("ABC123", 0.8), obs("A8C123", 0.95), obs("ABC12", 0.3)])
    assert result is not None
    assert result.text == "ABC123" and result.reads == 2 and result.total == 4
    assert result.alternatives[0][0] == "A8C123"
    # mean 0.85 x share 1.7 / 2.95
    assert result.confidence == pytest.approx(0.85 * 1.7 / 2.95, abs=1e-4)
    assert result.best.confidence == 0.9
    assert vote([]) is None


def test_grouper_needs_confidence_and_agreement():
    g = ReadGrouper(min_confidence=0.6, min_reads=2, single_read_confidence=0.95)
    assert g.add(obs("ABC123", 0.9)) is None  # not armed: no vehicle
    g.arm()
    assert g.add(obs("ABC123", 0.9)) is None  # one read is not enough at 0.9
    first = g.add(obs("ABC123", 0.85, 0.2))
    assert first is not None and first.text == "ABC123"
    assert g.add(obs("ABC123", 0.99, 0.4)) is None  # one decision per presence
    assert g.disarm() is None  # already emitted
    g.arm()
    assert g.add(obs("ABC123", 0.97)) is not None  # the same plate again is a new read


def test_grouper_final_vote_when_never_confident():
    g = ReadGrouper(min_confidence=0.9, min_reads=2)
    g.arm()
    g.add(obs("ABC123", 0.5))
    g.add(obs("ABD123", 0.4))
    final = g.disarm()
    assert final is not None and final.text == "ABC123" and final.confidence < 0.9


def test_continuous_groups_are_split_by_a_gap():
    g = ReadGrouper(min_reads=1, single_read_confidence=0.9, gap=timedelta(seconds=5))
    assert g.add(obs("CAR1", 0.95, 0), continuous=True) is not None
    assert g.add(obs("CAR1", 0.95, 2), continuous=True) is None  # same car, same burst
    assert g.add(obs("CAR1", 0.95, 20), continuous=True) is not None  # it came back later


@pytest.mark.parametrize(
    ("formats", "read", "expected"),
    [
        ((), "AB0123", ("AB0123", True)),
        ((r"[A-Z]{2}\d{4}",), "AB0123", ("AB0123", True)),
        ((r"[A-Z]{2}\d{4}",), "A80123", ("AB0123", True)),  # 8 in a letter position
        ((r"[A-Z]{2}\d{4}",), "ABO12S", ("AB0125", True)),  # two confusions in digit positions
        ((r"[A-Z]{2}\d{4}",), "ABCDEF", ("ABCDEF", False)),  # nothing to fix
        ((r"[A-Z]{3}\d{3}", r"\d{3}[A-Z]{3}"), "1234BC", ("1234BC", False)),
    ],
)
def test_plate_rules(formats, read, expected):
    assert PlateRules.from_patterns(formats).conform(read) == expected


@pytest.mark.parametrize(
    ("read", "confidences", "expected"),
    [
        # The doubtful O is swapped to fit the site's format (three letters, three digits).
        ("ABC12O", (0.99, 0.99, 0.99, 0.98, 0.97, 0.55), ("ABC120", True)),
        # A confident read of a plate from elsewhere is never rewritten into the format.
        ("ABC12O", (0.99, 0.99, 0.99, 0.98, 0.97, 0.96), ("ABC12O", False)),
        # Only the doubtful characters may move: the sure 1 stays, so this cannot fit.
        ("AB1123", (0.99, 0.99, 0.97, 0.99, 0.99, 0.99), ("AB1123", False)),
        ("AB1123", (0.99, 0.99, 0.40, 0.99, 0.99, 0.99), ("ABI123", True)),
        # Confidences that do not line up with the text are ignored (all characters movable).
        ("ABC12O", (0.99, 0.99), ("ABC120", True)),
    ],
)
def test_formats_are_hints_that_never_override_a_confident_character(read, confidences, expected):
    rules = PlateRules.from_patterns([r"[A-Z]{3}[0-9]{3}"])
    assert rules.conform(read, char_confidences=confidences) == expected


@given(plates)
def test_neighbours_are_one_edit_away(plate):
    near = neighbours(plate)
    assert plate not in near
    assert plate[1:] in near and plate[:-1] + ("X" if plate[-1] != "X" else "Y") in near
    assert all(abs(len(n) - len(plate)) <= 1 for n in near)


@given(
    plates,
    st.integers(min_value=0, max_value=7),
    st.sampled_from("0123456789ABCDEFGHJKLMNPRTUVWXYZ"),
)
def test_a_single_misread_matches_its_car_and_only_it(plate, position, char):
    i = position % len(plate)
    misread = plate[:i] + char + plate[i + 1 :]
    result = match(misread, [plate, "ZZZZZZZZZ"])
    if misread == plate:
        assert result.kind == "exact" and result.plate == plate
    else:
        assert result.kind == "near" and result.plate == plate


def test_two_candidates_are_ambiguous_and_far_ones_do_not_match():
    assert match("KL770B", ["KL7700", "KL7708"]).kind == "ambiguous"
    assert match("KL770B", ["KL7708"]).plate == "KL7708"
    assert match("KL77", ["KL7700"]).kind == "none"  # two edits away
    assert match("ABC123", []).kind == "none"


def test_continuous_next_vehicle_starts_a_new_group():
    g = ReadGrouper(min_reads=1, single_read_confidence=0.9, gap=timedelta(seconds=5))
    assert g.add(obs("CAR1", 0.95, 0), continuous=True).text == "CAR1"
    assert g.add(obs("CAR7", 0.95, 1), continuous=True) is None  # a misread of the same car
    assert g.add(obs("OTHER99", 0.95, 2), continuous=True).text == "OTHER99"  # the next car
