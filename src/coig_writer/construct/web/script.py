"""Script conversion (opencc, traditional -> simplified) and language identification (py3langid)."""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def _converter() -> Any:
    import opencc

    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    """`text` in simplified characters (opencc's t2s; simplified text is left as it is)."""
    return _converter().convert(text) if text else text


def detect_language(text: str, sample: int = 5000) -> str:
    """The ISO 639-1 code of the text's language ("zh" for either script); "und" for no text."""
    text = text[:sample]
    if not text.strip():
        return "und"
    import py3langid

    return str(py3langid.classify(text)[0])
