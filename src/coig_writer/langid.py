"""Language of a text (zh or en), by script: enough for contamination checks and balancing."""

from __future__ import annotations

import re

_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def detect_language(text: str) -> str | None:
    """`zh` when Han characters are at least half of (Han characters + English words), else
    `en`; None for text with neither. A Han character carries about a word's weight."""
    han = len(_HAN.findall(text))
    words = len(re.findall(r"[A-Za-z]+", text))
    if han + words == 0:
        return None
    return "zh" if han >= words else "en"
