"""The one interface of the named checks: an input triplet, a check, and its result."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Literal, NamedTuple

from .units import detect_lang

if TYPE_CHECKING:
    from .config import ChecksConfig

Target = Literal["prompt", "reasoning", "text"]
Severity = Literal["fail", "review"]
Value = float | int | str
Threshold = Value | bool | tuple[Value | None, ...] | None


@dataclass(frozen=True)
class CheckInput:
    """One triplet as the checks see it. `others`: texts of other items (the run's or the
    file's), which tell what any text shares; when empty a packaged background set stands in.
    `lang` is detected from the prompt and text when not given."""

    prompt: str
    reasoning: str
    text: str
    lang: str | None = None
    genre: str | None = None
    title: str | None = None
    author: str | None = None
    others: tuple[str, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.others, tuple):  # a list or generator of texts is fine too
            object.__setattr__(self, "others", tuple(self.others))

    @cached_property
    def language(self) -> str:
        return self.lang if self.lang in ("zh", "en") else detect_lang(self.prompt, self.text)


@dataclass(frozen=True)
class CheckResult:
    """What one check found. `detail` says what is wrong and what to do (it is both the
    rejection reason and the refinement feedback); `severity` "review" never rejects."""

    name: str
    passed: bool
    value: Value
    threshold: Threshold
    detail: str
    severity: Severity = "fail"
    target: Target = "reasoning"

    @property
    def reason(self) -> str:
        """`name: detail`, the form stored as a triplet's reason."""
        return f"{self.name}: {self.detail}"


class Outcome(NamedTuple):
    passed: bool
    value: Value
    detail: str


@dataclass(frozen=True)
class Check:
    """A named check over one input. `fields` are the ChecksConfig fields holding its
    threshold(s); it is off when all of them are None."""

    name: str
    target: Target
    fields: tuple[str, ...]
    measure: Callable[[CheckInput, ChecksConfig], Outcome]
    summary: str
    severity: Severity = "fail"

    def threshold(self, cfg: ChecksConfig) -> Threshold:
        values = tuple(getattr(cfg, f) for f in self.fields)
        return values[0] if len(values) == 1 else values

    def enabled(self, cfg: ChecksConfig) -> bool:
        return any(getattr(cfg, f) is not None and getattr(cfg, f) is not False
                   for f in self.fields)

    def run(self, inp: CheckInput, cfg: ChecksConfig) -> CheckResult:
        out = self.measure(inp, cfg)
        return CheckResult(self.name, bool(out.passed), out.value, self.threshold(cfg),
                           out.detail, self.severity, self.target)


def say(lang: str, zh: str, en: str) -> str:
    """The detail in the triplet's language."""
    return zh if lang == "zh" else en


def failed(results: Sequence[CheckResult], severity: Severity | None = "fail") -> list[CheckResult]:
    """Results that did not pass (of one severity; None: any)."""
    return [r for r in results if not r.passed and (severity is None or r.severity == severity)]
