"""A user's map of CSS selectors per site, for the signals a page does not mark up
(`construct ingest --signals sites.yaml`).

```yaml
# sites.yaml: host (or a parent domain) -> field -> selector
www.douban.com:
  likes: ".rating_people span"                    # first number in the element's text
  comments: {selector: "#comments .count", attr: "data-count"}   # ... or in an attribute
  featured: {selector: ".essence-badge", exists: true}           # true when present
tieba.baidu.com:
  featured: {selector: ".icon-good", exists: true}
```
A host matches a key equal to it or a parent domain of it (`douban.com` matches
movie.douban.com; the longest key wins). Counts read "1.2万" as 12000. A field the selector does
not find on a page is absent from that page (so `--where` filters it with the reason "no FIELD").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from .signals import parse_count


class SitesError(ValueError):
    """A signals file that cannot be used (the CLI exits 2 with this message)."""


class FieldRule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    selector: str
    attr: str | None = None
    exists: bool = False  # the field is true when the selector matches, false otherwise
    text: bool = False  # keep the element's text as a string, not a number


@cache
def compiled(selector: str) -> Any:
    """The selector as an lxml XPath function (compiled once per process: Ray workers get the
    rules, not lxml objects, which do not pickle)."""
    from lxml.cssselect import CSSSelector

    return CSSSelector(selector)


@dataclass
class SiteSignals:
    """Selector rules: host -> [(field, rule)]."""

    sites: dict[str, list[tuple[str, FieldRule]]] = field(default_factory=dict)

    @property
    def fields(self) -> set[str]:
        return {name for rules in self.sites.values() for name, _ in rules}

    def rules_for(self, host: str | None) -> list[tuple[str, FieldRule]]:
        host = (host or "").lower()
        keys = [k for k in self.sites if host == k or host.endswith("." + k)]
        return self.sites[max(keys, key=len)] if keys else []

    def read(self, tree: Any, host: str | None) -> dict[str, Any]:
        """The fields this map finds on a page of `host`."""
        out: dict[str, Any] = {}
        for name, rule in self.rules_for(host):
            found = compiled(rule.selector)(tree)
            if rule.exists:
                out[name] = bool(found)
                continue
            if not found:
                continue
            el = found[0]
            raw = el.get(rule.attr) if rule.attr else el.text_content()
            value = (raw or "").strip() if rule.text else parse_count(raw)
            if value not in (None, ""):
                out[name] = value
        return out


def load_sites(path: Path) -> SiteSignals:
    """Read and compile a signals file; SitesError naming the file and the bad entry."""
    from lxml.cssselect import SelectorError as CssError

    try:
        data = yaml.safe_load(path.read_text("utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise SitesError(f"{path}: cannot read the signals file: {e}") from None
    if not isinstance(data, dict):
        raise SitesError(f"{path}: expected a mapping of host -> field -> selector")
    out = SiteSignals()
    for host, fields in data.items():
        if not isinstance(fields, dict):
            raise SitesError(f"{path}: {host}: expected a mapping of field -> selector")
        rules = []
        for name, spec in fields.items():
            where = f"{path}: {host}.{name}"
            try:
                rule = FieldRule(selector=spec) if isinstance(spec, str) else FieldRule(**spec)
                compiled(rule.selector)
                rules.append((str(name), rule))
            except (ValidationError, TypeError) as e:
                raise SitesError(f"{where}: {e}") from None
            except CssError as e:
                raise SitesError(f"{where}: bad CSS selector {spec!r}: {e}") from None
        out.sites[str(host).lower()] = rules
    return out
