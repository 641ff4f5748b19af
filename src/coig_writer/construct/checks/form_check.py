"""The check on the text: its form (verse, prose, script) against its genre's expected forms.
A disagreement is a reason for human review, never a rejection."""

from __future__ import annotations

from ...genres import load_taxonomy
from .base import Check, CheckInput, Outcome, say
from .config import ChecksConfig
from .form import detect_form

_ZH = {"verse": "分行的诗体", "prose": "散文体", "script": "剧本对白"}


def _form_vs_genre(inp: CheckInput, cfg: ChecksConfig) -> Outcome:
    form = detect_form(inp.text, inp.language)
    expected = load_taxonomy().expected_forms(inp.genre)
    if expected is None or form in expected:
        return Outcome(True, form, form if expected is None else f"{form}, as {inp.genre} expects")
    want = "或".join(_ZH[f] for f in expected)
    return Outcome(False, form, say(
        inp.language, f"文本的形式是{_ZH[form]}，而体裁 {inp.genre} 应为{want}：请人工确认体裁是否判对。",
        f"the text is {form}, but genre {inp.genre} expects {' or '.join(expected)}: a reviewer "
        "should confirm the genre."))


TEXT_CHECKS = (
    Check("form_mismatches_genre", "text", ("check_form",), _form_vs_genre,
          "the text's form detected without an LLM (verse, prose, script) is one of the forms "
          "data/genres.yaml gives its genre", severity="review"),
)
