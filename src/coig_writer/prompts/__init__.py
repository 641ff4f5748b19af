"""Versioned prompt templates and rubrics, stored as YAML files under `templates/<lang>/`.

A template has `name`, `version`, `output` (`json` or `text`), `system` and `user` texts with
`$variables` (string.Template syntax, so JSON braces need no escaping). Its sha256 over the file
bytes goes into every cache key and output record, so editing a prompt invalidates exactly the
calls that used it.

Prefix-shared layout (`<lang>/shared/`): `prefix.yaml` holds the system message, the source block
(`user`) and named `blocks`; each stage template lists in `prefix` the blocks that follow the
source before its own `user` instructions. `compose` renders them so that all calls of one text
begin with the same bytes (see `prefix.yaml`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from string import Template

import yaml

LANGS = ("zh", "en")


class TemplateError(ValueError):
    pass


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    lang: str
    version: int
    output: str
    system: str
    user: str
    sha256: str
    source: str
    blocks: tuple[tuple[str, str], ...] = ()
    prefix: tuple[str, ...] | None = None  # shared layout: blocks of the prefix it follows

    @property
    def ref(self) -> str:
        """Human-readable identity: name@version/lang#hash-prefix."""
        return f"{self.name}@v{self.version}/{self.lang}#{self.sha256[:12]}"

    def render(self, **variables: object) -> list[dict[str, str]]:
        """Chat messages with variables substituted; a missing variable is an error."""
        try:
            msgs = []
            if self.system.strip():
                msgs.append({"role": "system",
                             "content": Template(self.system).substitute(variables).strip()})
            msgs.append({"role": "user",
                         "content": Template(self.user).substitute(variables).strip()})
            return msgs
        except KeyError as e:
            raise TemplateError(f"template {self.ref} needs variable {e}") from None


def _sub(text: str, variables: dict[str, object]) -> str:
    return Template(text).substitute(variables).strip()


def compose(prefix: PromptTemplate, stage: PromptTemplate,
            **variables: object) -> list[dict[str, str]]:
    """Messages of a shared-layout call: the prefix's system message, then one user message with
    the source block, the blocks `stage.prefix` names (in the prefix's order) and the stage's
    instructions. Calls of one text share the system message and the user text up to the first
    block they differ in, byte for byte."""
    if stage.prefix is None:
        raise TemplateError(f"template {stage.ref} is not a shared-layout stage (no `prefix`)")
    blocks = dict(prefix.blocks)
    unknown = set(stage.prefix) - set(blocks)
    if unknown:
        raise TemplateError(f"template {stage.ref} names unknown prefix blocks {sorted(unknown)}")
    try:
        parts = [_sub(prefix.user, variables)]
        parts += [_sub(text, variables) for name, text in prefix.blocks if name in stage.prefix]
        parts.append(_sub(stage.user, variables))
        return [{"role": "system", "content": _sub(prefix.system, variables)},
                {"role": "user", "content": "\n\n".join(parts)}]
    except KeyError as e:
        raise TemplateError(f"template {stage.ref} or {prefix.ref} needs variable {e}") from None


def parse_template(text: str, source: str, lang: str) -> PromptTemplate:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise TemplateError(f"{source}: invalid YAML: {e}") from None
    missing = {"name", "version", "output", "user"} - set(raw or {})
    if missing:
        raise TemplateError(f"{source}: missing keys {sorted(missing)}")
    if raw["output"] not in ("json", "text"):
        raise TemplateError(f"{source}: output must be json or text")
    blocks, prefix = raw.get("blocks") or {}, raw.get("prefix")
    if not isinstance(blocks, dict) or not all(isinstance(v, str) for v in blocks.values()):
        raise TemplateError(f"{source}: blocks must map names to texts")
    if prefix is not None and not isinstance(prefix, list):
        raise TemplateError(f"{source}: prefix must be a list of block names")
    return PromptTemplate(
        name=raw["name"], lang=lang, version=int(raw["version"]), output=raw["output"],
        system=raw.get("system", ""), user=raw["user"],
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(), source=source,
        blocks=tuple((str(k), v) for k, v in blocks.items()),
        prefix=tuple(str(b) for b in prefix) if prefix is not None else None)


@cache
def load_template(name: str, lang: str = "zh", template_dir: str | None = None) -> PromptTemplate:
    """Load `name` for `lang` from the package, or from `template_dir/<lang>/<name>.yaml`
    (`name` may name a subfolder: `shared/screen`)."""
    if lang not in LANGS:
        raise TemplateError(f"unknown language {lang!r}; choose one of {LANGS}")
    if template_dir:
        path = Path(template_dir) / lang / f"{name}.yaml"
        if not path.exists():
            raise TemplateError(f"no template {path}")
        return parse_template(path.read_text("utf-8"), str(path), lang)
    res = resources.files("coig_writer.prompts").joinpath(f"templates/{lang}/{name}.yaml")
    if not res.is_file():
        raise TemplateError(f"no packaged template {lang}/{name}.yaml")
    return parse_template(res.read_text("utf-8"), f"coig_writer/prompts/templates/{lang}/{name}.yaml",
                          lang)


def list_templates(lang: str = "zh") -> list[str]:
    """Packaged template names, those of the shared layout as `shared/<name>`."""
    folder = resources.files("coig_writer.prompts").joinpath(f"templates/{lang}")
    names = [p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml")]
    shared = folder.joinpath("shared")
    if shared.is_dir():
        names += [f"shared/{p.name.removesuffix('.yaml')}" for p in shared.iterdir()
                  if p.name.endswith(".yaml")]
    return sorted(names)
