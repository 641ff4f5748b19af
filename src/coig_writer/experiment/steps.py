"""The work of each step. Each takes the context, its step and its upstream steps' outputs and
returns (outputs with a content `hash`, cost in USD or None). Raises StepError with the reason.

Models are stored under versioned names (`CW@1a2b3c4d`: the name and the generation step's
input hash), so a retrained model gets new answers and new verdicts while earlier ones stay
in the store; the report shows the plain names.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .graph import Step
from .plan import Plan


class StepError(RuntimeError):
    """A step failed; the message says why (shown in status, stops its dependants)."""


@dataclass
class Context:
    plan: Plan
    folder: Path
    store: Any
    log: Any = print  # one line per event

    def path(self, p: str) -> Path:
        q = Path(p).expanduser()
        return q if q.is_absolute() else (self.folder / q).resolve()

    @property
    def db_path(self) -> Path:
        return self.folder / "store.sqlite"


def digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, ensure_ascii=False, sort_keys=True,
                                     default=str).encode()).hexdigest()


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def versioned(name: str, gen_hash: str) -> str:
    return f"{name}@{gen_hash[:8]}"


# -- prompts ------------------------------------------------------------------------------------
def select_prompts(ctx: Context) -> list:
    """The eval sets' prompts (each set's first `limit` by id); StepError naming the set."""
    from ..evaluate.benchmarks import BENCHMARKS, BenchmarkError, get_benchmark
    from ..evaluate.prompt_sets import BUNDLED, load_prompt_file

    out: list = []
    for s in ctx.plan.eval_sets:
        try:
            if s.source in BENCHMARKS:
                prompts = get_benchmark(s.source).load(s.domain, s.lang)
            else:
                if s.source in BUNDLED:
                    from importlib import resources

                    res = resources.files("coig_writer").joinpath(f"data/eval/{BUNDLED[s.source]}")
                    with resources.as_file(res) as path:
                        prompts, bad = load_prompt_file(path, s.source)
                else:
                    path = ctx.path(s.source)
                    if not path.exists():
                        raise StepError(f"eval set {s.source}: no such file {path}")
                    prompts, bad = load_prompt_file(path, path.stem)
                for q in bad:
                    ctx.log(f"  skipped prompt {q.where}: {q.error}")
        except BenchmarkError as e:
            raise StepError(str(e)) from None
        chosen = sorted((p for p in prompts if not s.lang or p.lang == s.lang), key=lambda p: p.id)
        out += chosen[: s.limit] if s.limit is not None else chosen
    if not out:
        raise StepError("the eval sets select no prompts")
    return out


def run_prompts(ctx: Context, step: Step, up: dict[str, dict]) -> tuple[dict, float | None]:
    ids: list[str] = []
    for p in select_prompts(ctx):
        ctx.store.evaluation.put_eval_prompt(p)
        ids.append(p.id)
    texts = [ctx.store.evaluation.get_eval_prompt(i).model_dump_json(exclude={"created_at"}) for i in ids]
    return {"ids": ids, "n": len(ids), "hash": digest(texts)}, None


# -- mixtures -----------------------------------------------------------------------------------
def creative_digest(ctx: Context) -> str:
    """What the creative triplets are now (file content, or the store's chosen triplets)."""
    c = ctx.plan.creative
    if c.source == "file":
        return file_digest(ctx.path(c.file or ""))
    return digest([t.model_dump_json() for t in creative_triplets(ctx)])


def general_pool(ctx: Context) -> list:
    """Every general sample of the plan's general files (malformed rows logged, skipped)."""
    from ..mix.samples import read_general

    pool = []
    for f in ctx.plan.general_files:
        path = ctx.path(f)
        if not path.exists():
            raise StepError(f"general file: no such file {path}")
        good, bad = read_general(path)
        for q in bad:
            ctx.log(f"  skipped malformed row {q.where}: {q.error}")
        pool += good
    return pool


def creative_triplets(ctx: Context) -> list:
    """The creative triplets the plan takes: a file's rows, or the store's (human-)accepted."""
    c = ctx.plan.creative
    if c.source == "file":
        from ..dataset.io import iter_triplet_rows

        path = ctx.path(c.file or "")
        if not path.exists():
            raise StepError(f"creative.file: no such file {path}")
        return [t for *_, t, _, _ in iter_triplet_rows(path) if t is not None]
    from ..store import Store

    db = ctx.path(c.db) if c.db else None
    if db is None or not db.exists():
        raise StepError(f"creative.db: no store at {db}; set creative.db or use a file")
    with Store(db) as s:
        trips = list(s.construct.iter_triplets("accepted"))
        if c.source == "reviewed":
            from ..review.service import human_accepted_ids, load_policy

            keep = human_accepted_ids(s, load_policy(s))
            trips = [t for t in trips if t.id in keep]
    return trips


def run_mixture(ctx: Context, step: Step, up: dict[str, dict]) -> tuple[dict, float | None]:
    from ..mix.builder import MixSpec, MixtureError, build_mixture
    from ..mix.export import export_mixture
    from ..mix.samples import from_triplets

    m = next(x for x in ctx.plan.mixtures if x.name == step.target)
    pool_c = from_triplets(creative_triplets(ctx))
    pool_g = general_pool(ctx)
    spec = MixSpec(**m.model_dump())
    try:
        mix = build_mixture(pool_c, pool_g, spec)
    except MixtureError as e:
        raise StepError(f"mixture {m.name}: {e}") from None
    out = ctx.folder / "mixtures" / m.name
    files = export_mixture(mix, out, ctx.plan.reasoning, base_model=ctx.plan.base_model)
    return {"dir": str(out), "train_data": str(files["trl"]), "counts": mix.counts,
            "hash": file_digest(files["trl"])}, None


# -- training -----------------------------------------------------------------------------------
def train_config(ctx: Context, name: str, data: str) -> dict[str, Any]:
    base = ctx.plan.base_model
    model = str(ctx.path(base)) if not _is_hub_id(ctx, base) else base
    return {"model": model, "data": data, "output_dir": str(ctx.folder / "models" / name),
            **ctx.plan.training.for_model(name)}


def _is_hub_id(ctx: Context, base: str) -> bool:
    return not ctx.path(base).exists() and base.count("/") == 1 and not base.startswith(".")


def train_command(ctx: Context, config: Path) -> list[str]:
    cmd = [sys.executable, "-m", "coig_writer.cli", "train", "run", "--config", str(config)]
    for k, v in ctx.plan.training.launcher.items():
        if v is None or v is False:
            continue
        flag = "--" + k.replace("_", "-")
        cmd += [flag] if v is True else [flag, str(v)]
    return cmd


def run_train(ctx: Context, step: Step, up: dict[str, dict], fresh: bool
              ) -> tuple[dict, float | None]:
    """`coig-writer train run --config models/<name>/train.yaml` as a child process (stopped
    if this process dies). `fresh`: the inputs changed, so old checkpoints are removed first;
    otherwise an interrupted run resumes from its last checkpoint."""
    from ..llm.managed import start_child, stop_child
    from ..llm.transformers_backend import checkpoint_fingerprint

    name = step.target or ""
    out = ctx.folder / "models" / name
    if fresh and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = train_config(ctx, name, up[f"mixture:{name}"]["train_data"])
    config = out / "train.yaml"
    config.write_text(yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True), "utf-8")
    log_path = out / "train.log"
    with log_path.open("a", encoding="utf-8") as log:
        proc = start_child(train_command(ctx, config), log)
        try:
            rc = proc.wait()
        finally:
            stop_child(proc)
    final = out / "final"
    if rc != 0 or not (final / "config.json").exists():
        tail = log_path.read_text("utf-8", errors="replace").strip().splitlines()[-5:]
        raise StepError(f"training exited with code {rc}: " + " | ".join(tail)[-600:]
                        + f" (log: {log_path})")
    result = out / "train_result.json"
    info = json.loads(result.read_text("utf-8")) if result.exists() else {}
    return {"model_dir": str(final), "log": str(log_path), "train_result": info,
            "hash": checkpoint_fingerprint(final)}, None
