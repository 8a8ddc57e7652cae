"""Licence plates as the site stores and matches them.

A plate is stored in one canonical form so that ``ab-123 c`` typed at a kiosk, ``AB123C``
read by a camera and ``AB 123 C`` from the central system are the same vehicle: upper
case, with spaces, dashes and dots removed (separators differ by country and by who typed
them, the characters do not).
"""

from __future__ import annotations

import re

MAX_PLATE_LENGTH = 20
_SEPARATORS = re.compile(r"[\s\-.·]+")
# Latin letters with diacritics and Cyrillic letters; the blocks' few symbols and marks
# (U+00D7 multiplication sign, U+00F7 division sign, U+0482..U+0489) are not letters and are left out.
_VALID = re.compile(r"^[A-Z0-9\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u024F\u0400-\u0481\u048A-\u04FF]+$")


class InvalidPlate(ValueError):
    """The text cannot be a licence plate."""


def normalize_plate(text: str) -> str:
    """Canonical form of a plate; raises :class:`InvalidPlate` with the reason."""
    plate = _SEPARATORS.sub("", text.strip()).upper()
    if not plate:
        raise InvalidPlate("licence plate must not be blank")
    if len(plate) > MAX_PLATE_LENGTH:
        raise InvalidPlate(f"licence plate must be at most {MAX_PLATE_LENGTH} characters")
    if not _VALID.match(plate):
        raise InvalidPlate("licence plate may contain only letters and digits")
    return plate
