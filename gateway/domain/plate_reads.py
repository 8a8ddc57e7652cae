"""Plate reads: from many noisy OCR results to one decision-grade read per vehicle.

Three pure pieces, used by camera lanes and smart cameras alike:

* :class:`PlateRules`: the site's plate formats (a regular expression per region) and the
  OCR confusions (O/0, I/1, B/8, S/5, Z/2, G/6) used to bring a read into a valid format.
* :func:`vote` and :class:`ReadGrouper`: every read of one presence (or, without a loop,
  of one burst of reads) is grouped and voted into a single :class:`PlateVote`.
* :func:`neighbours` and :func:`match`: an inexact read matches a vehicle inside only when
  exactly one candidate is within one OCR confusion or edit; two candidates is
  ``plate_uncertain``, so a misread never opens a gate for the wrong car.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import combinations

# Characters OCR mixes up on plates, both ways.
CONFUSIONS: dict[str, str] = {
    "O": "0",
    "0": "O",
    "I": "1",
    "1": "I",
    "B": "8",
    "8": "B",
    "S": "5",
    "5": "S",
    "Z": "2",
    "2": "Z",
    "G": "6",
    "6": "G",
    "D": "0",
    "Q": "0",
}
ALPHABET = string.ascii_uppercase + string.digits
# A character read at least this sure is never swapped to fit a plate format.
SURE_CHARACTER = 0.9


@dataclass(frozen=True)
class PlateRules:
    """Plate formats of the site's region(s); empty means any text is a plate."""

    formats: tuple[re.Pattern[str], ...] = ()

    @classmethod
    def from_patterns(cls, patterns: Iterable[str]) -> PlateRules:
        return cls(tuple(re.compile(p) for p in patterns))

    def valid(self, text: str) -> bool:
        return not self.formats or any(f.fullmatch(text) for f in self.formats)

    def conform(
        self,
        text: str,
        max_swaps: int = 2,
        char_confidences: Sequence[float] | None = None,
        sure: float = SURE_CHARACTER,
    ) -> tuple[str, bool]:
        """The read in a valid format, swapping as few confusable characters as possible.

        Formats are hints, not the truth: only characters the OCR was less than ``sure`` of
        may be swapped (all of them when no confidences are given), so a confident read of a
        plate from elsewhere is never rewritten into the site's format. Returns ``(text,
        valid)``; a read that cannot be fitted is returned unchanged with ``False``.
        """
        if self.valid(text):
            return text, True
        known = char_confidences is not None and len(char_confidences) == len(text)
        confidences = list(char_confidences) if char_confidences and known else [0.0] * len(text)
        positions = [i for i, ch in enumerate(text) if ch in CONFUSIONS and confidences[i] < sure]
        for swaps in range(1, max_swaps + 1):
            for chosen in _combinations(positions, swaps):
                chars = list(text)
                for i in chosen:
                    chars[i] = CONFUSIONS[chars[i]]
                candidate = "".join(chars)
                if self.valid(candidate):
                    return candidate, True
        return text, False


def _combinations(items: Sequence[int], k: int) -> Iterable[tuple[int, ...]]:
    return combinations(items, k)


@dataclass(frozen=True, kw_only=True)
class Observation:
    """One OCR result of one frame (or one smart-camera message)."""

    text: str
    confidence: float
    at: datetime
    evidence: object | None = None  # the frame and crop behind it, opaque here


@dataclass(frozen=True, kw_only=True)
class PlateVote:
    text: str
    confidence: float
    reads: int  # how many observations voted for it
    total: int  # how many observations there were
    alternatives: tuple[tuple[str, float], ...]  # other texts and their share, best first
    first_seen: datetime
    last_seen: datetime
    best: Observation  # the winning text's most confident observation (its evidence is stored)


def vote(observations: Sequence[Observation]) -> PlateVote | None:
    """Confidence-weighted vote; the winner's confidence is its mean confidence times its share."""
    if not observations:
        return None
    weight: dict[str, float] = {}
    for o in observations:
        weight[o.text] = weight.get(o.text, 0.0) + o.confidence
    total = sum(weight.values()) or 1.0
    ranked = sorted(weight.items(), key=lambda kv: (-kv[1], kv[0]))
    text, score = ranked[0]
    mine = [o for o in observations if o.text == text]
    mean = sum(o.confidence for o in mine) / len(mine)
    return PlateVote(
        text=text,
        confidence=round(mean * score / total, 4),
        reads=len(mine),
        total=len(observations),
        alternatives=tuple((t, round(w / total, 4)) for t, w in ranked[1:4]),
        first_seen=min(o.at for o in observations),
        last_seen=max(o.at for o in observations),
        best=max(mine, key=lambda o: o.confidence),
    )


@dataclass(kw_only=True)
class ReadGrouper:
    """Groups the reads of one vehicle and says when the group is decided.

    With a presence loop the group is the time the loop is occupied (``arm``/``disarm``);
    without one, a group starts with the first read and ends after ``gap`` without reads.
    A group yields at most one confident vote; the same plate in the next group is a new
    read (a returning car must make the gate fire again).
    """

    min_confidence: float = 0.6
    emitted_text: str | None = None
    min_reads: int = 2  # or one read at ``single_read_confidence``
    single_read_confidence: float = 0.95
    gap: timedelta = timedelta(seconds=5)
    armed: bool = False
    observations: list[Observation] = field(default_factory=list)
    emitted: bool = False
    last_at: datetime | None = None

    def arm(self) -> None:
        self.armed, self.observations, self.emitted, self.last_at = True, [], False, None

    def disarm(self) -> PlateVote | None:
        """The vehicle left: the final vote of the group if it never became confident."""
        final = None if self.emitted else vote(self.observations)
        self.armed, self.observations, self.emitted, self.last_at = False, [], False, None
        return final

    def add(self, observation: Observation, *, continuous: bool = False) -> PlateVote | None:
        """Add a read; returns the vote the first time the group is confident."""
        if continuous:
            gone = self.last_at is not None and observation.at - self.last_at > self.gap
            # Without a loop, another plate (not a misread of the one just decided) is the next vehicle.
            other = (
                self.emitted
                and self.emitted_text is not None
                and observation.text != self.emitted_text
                and observation.text not in neighbours(self.emitted_text)
            )
            if gone or other:
                self.observations, self.emitted, self.emitted_text = [], False, None
            self.armed = True
        elif not self.armed:
            return None
        self.last_at = observation.at
        if self.emitted:
            return None
        self.observations.append(observation)
        result = vote(self.observations)
        assert result is not None
        if result.confidence >= self.min_confidence and (
            result.reads >= self.min_reads or result.best.confidence >= self.single_read_confidence
        ):
            self.emitted, self.emitted_text = True, result.text
            return result
        return None


def neighbours(text: str) -> set[str]:
    """Every plate within one edit (substitution, insertion, deletion) of ``text``."""
    out: set[str] = set()
    for i in range(len(text)):
        out.add(text[:i] + text[i + 1 :])
        for ch in ALPHABET:
            out.add(text[:i] + ch + text[i + 1 :])
    for i in range(len(text) + 1):
        for ch in ALPHABET:
            out.add(text[:i] + ch + text[i:])
    out.discard(text)
    out.discard("")
    return out


@dataclass(frozen=True)
class Match:
    kind: str  # exact | near | ambiguous | none
    plate: str | None
    candidates: tuple[str, ...] = ()


def match(read: str, inside: Iterable[str]) -> Match:
    """Which vehicle inside a read names: exact, or the only one within one edit."""
    plates = set(inside)
    if read in plates:
        return Match("exact", read)
    near = sorted(plates & neighbours(read))
    if len(near) == 1:
        return Match("near", near[0], tuple(near))
    if near:
        return Match("ambiguous", None, tuple(near))
    return Match("none", None)
