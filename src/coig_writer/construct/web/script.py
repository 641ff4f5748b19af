"""Script conversion (opencc, traditional -> simplified) and language identification (py3langid)."""

from __future__ import annotations

import re
from functools import cache
from typing import Any


@cache
def _converter() -> Any:
    import opencc

    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    """`text` in simplified characters (opencc's t2s; simplified text is left as it is)."""
    return _converter().convert(text) if text else text


_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_KANA_HANGUL = re.compile(r"[\u3040-\u30ff\u31f0-\u31ff\uac00-\ud7af\u1100-\u11ff]")
_LETTER = re.compile(r"[^\W\d_]")
# py3langid also names Chinese varieties (ISO 639-3); their written forms are Chinese text,
# and its guesses between them are unreliable (a Mao Zedong ci came out as Wu): all are "zh"
CHINESE = {"yue", "wuu", "gan", "hak", "nan", "cmn", "lzh", "cdo", "hsn"}


def detect_language(text: str, sample: int = 5000) -> str:
    """The ISO 639-1 code of the text's language ("zh" for either script); "und" for no text.

    A text of which at least 30% of the letters are Han characters, with no kana or hangul, is
    Chinese by its script alone (a Chinese page quoting English commands included; loading
    py3langid's model takes 1.7 s); every other text goes to py3langid."""
    text = text[:sample]
    if not text.strip():
        return "und"
    letters = len(_LETTER.findall(text))
    if letters and len(_HAN.findall(text)) >= 0.3 * letters and not _KANA_HANGUL.search(text):
        return "zh"
    import py3langid

    lang = str(py3langid.classify(text)[0])
    return "zh" if lang in CHINESE else lang
