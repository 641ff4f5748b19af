"""Metadata conditions on source texts (`--where 'likes>=5000' --where 'featured==true'`).

A condition compares one field of a text's metadata (the extra row fields ingest keeps; dots
reach into nested objects: `stats.likes`) with a number, a boolean or a string. Numbers take
== != >= <= > <; booleans and strings take == and !=. A text whose field is missing or of
another type is filtered with that reason; a condition that cannot apply (bad syntax, an
order on a string, a field no text has) is an error before anything is written.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

_COND = re.compile(r"^\s*([A-Za-z_][\w.\-]*)\s*(==|!=|>=|<=|>|<|=)\s*(.*?)\s*$")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
OPS = {"==": operator.eq, "!=": operator.ne, ">=": operator.ge, "<=": operator.le,
       ">": operator.gt, "<": operator.lt}


class WhereError(ValueError):
    """A condition that cannot be applied."""


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: float | bool | str

    @property
    def kind(self) -> str:
        return ("boolean" if isinstance(self.value, bool) else
                "number" if isinstance(self.value, (int, float)) else "string")

    def __str__(self) -> str:
        v = (str(self.value).lower() if isinstance(self.value, bool) else
             json.dumps(self.value, ensure_ascii=False) if isinstance(self.value, str)
             else f"{self.value:g}")
        return f"{self.field}{self.op}{v}"

    def lookup(self, meta: dict[str, Any]) -> tuple[bool, Any]:
        """(found, value) of the field in a metadata dict (dots go into nested objects)."""
        cur: Any = meta
        for part in self.field.split("."):
            if not isinstance(cur, dict) or part not in cur:
                return False, None
            cur = cur[part]
        return True, cur

    def reason(self, meta: dict[str, Any]) -> str | None:
        """Why a text with this metadata fails the condition; None when it passes."""
        found, raw = self.lookup(meta)
        if not found or raw is None:
            return f"where: no {self.field} (needs {self})"
        value = _coerce(raw, self.kind)
        shown = json.dumps(raw, ensure_ascii=False)[:40]
        if value is None:
            return f"where: {self.field} is {shown}, not a {self.kind} ({self})"
        if not OPS[self.op](value, self.value):
            return f"where: {self.field}={shown} fails {self}"
        return None


def _coerce(raw: Any, kind: str) -> Any:
    """The value as the condition's type, or None when it is not one."""
    if kind == "boolean":
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
            return raw.strip().lower() == "true"
        return None
    if kind == "number":
        if isinstance(raw, bool):
            return None
        if isinstance(raw, (int, float)):
            return raw
        if isinstance(raw, str) and _NUMBER.match(raw.strip().replace(",", "")):
            return float(raw.strip().replace(",", ""))
        return None
    return raw if isinstance(raw, str) else None


def parse_condition(text: str) -> Condition:
    """`likes>=5000`, `featured==true`, `platform==weibo`, `title=="a b"`."""
    m = _COND.match(text)
    if not m or not m.group(3) or m.group(3)[0] in "<>=!":
        raise WhereError(f"cannot read condition {text!r}: write FIELD OP VALUE, e.g. "
                         "likes>=5000, featured==true, platform==weibo (OP: == != >= <= > <)")
    field, op, raw = m.group(1), "==" if m.group(2) == "=" else m.group(2), m.group(3)
    value: float | bool | str
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        value = raw[1:-1]
    elif raw.lower() in ("true", "false"):
        value = raw.lower() == "true"
    elif _NUMBER.match(raw):
        value = float(raw) if any(c in raw for c in ".eE") else int(raw)
    else:
        value = raw
    cond = Condition(field, op, value)
    if op not in ("==", "!=") and cond.kind != "number":
        raise WhereError(f"condition {text!r}: {op} compares numbers, but {raw!r} is a "
                         f"{cond.kind}; use == or !=")
    return cond


def parse_conditions(texts: Sequence[str]) -> tuple[Condition, ...]:
    return tuple(parse_condition(t) for t in texts)


def where_reason(meta: dict[str, Any], conds: Sequence[Condition]) -> str | None:
    """The first failed condition's reason; None when all pass (or there are none)."""
    for c in conds:
        if (why := c.reason(meta)) is not None:
            return why
    return None


def check_fields(conds: Sequence[Condition], metas: Iterable[dict[str, Any]]) -> None:
    """Raise WhereError naming a field no text has (with the fields that exist)."""
    if not conds:
        return
    missing = {c.field for c in conds}
    seen: set[str] = set()
    for meta in metas:
        seen.update(_paths(meta))
        missing = {f for f in missing if f not in seen}
        if not missing:
            return
    raise WhereError(f"no text has the field(s) {sorted(missing)}; metadata fields seen: "
                     f"{sorted(seen)[:30] or 'none'}")


def _paths(meta: dict[str, Any], prefix: str = "") -> Iterable[str]:
    for k, v in meta.items():
        yield prefix + k
        if isinstance(v, dict):
            yield from _paths(v, f"{prefix}{k}.")
