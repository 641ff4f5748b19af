"""The plan checked as a whole before its first step: every problem the steps that are to run
would meet, found up front and listed together (`experiment init` and `experiment run` exit 2
with the list):
- data: the creative source and the general files exist, and every mixture can be filled
  (with the numbers: "need 4 general en samples, only 0 available");
- prompts: the eval sets select prompts;
- training: the base model is there, torch/transformers/trl are installed, a strategy that
  needs GPUs has them, and a base model too large for this machine's memory without a GPU
  is named;
- generation: the engine can serve the trained checkpoints and has the GPU it needs;
- the judge: its model is set, and each endpoint answers `GET /models` and serves the model;
- Ray: a local cluster has the GPUs `ray_gpus_per_task` asks for (else its tasks wait forever).
Nothing is trained, generated or judged; an endpoint gets one GET request."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .graph import build_graph
from .plan import Plan, PlanError
from .steps import Context, StepError, creative_triplets, general_pool, select_prompts

BYTES_PER_PARAM_FULL = 16  # fp32 master weights, gradients and two AdamW moments
BYTES_PER_PARAM_LORA = 4  # frozen fp32/bf16 base weights and the small adapters
GPU_STRATEGIES = ("fsdp2", "zero2", "zero3")
GPU_ENGINES = ("vllm", "sglang")
GIB = 1024 ** 3


@dataclass(frozen=True)
class Problem:
    """One reason the plan cannot run: the step or plan section it concerns, and why."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class PlanProblems(PlanError):
    """The plan cannot run as it is; `problems` lists every reason at once."""

    def __init__(self, problems: list[Problem], folder: Path | str):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"the plan in {folder} cannot run as it is ({len(problems)} "
                         f"problem{'s' if len(problems) != 1 else ''}):\n{lines}")


# -- data -----------------------------------------------------------------------------------------
def shortfalls(spec: Any, creative: list, general: list) -> list[str]:
    """What a mixture needs beyond the pools, with the numbers (empty: it can be filled)."""
    from ..mix.builder import MixtureError, apportion

    out = []
    n_c = len(creative) if spec.creative is None else spec.creative
    if n_c > len(creative):
        out.append(f"need {n_c} creative samples, only {len(creative)} available")
    try:
        n_g = spec.general_count(min(n_c, len(creative)))
    except MixtureError as e:
        return [*out, str(e)]
    if spec.lang_balance and n_g:
        have = Counter(s.lang or "?" for s in general)
        for lang, need in sorted(apportion(n_g, spec.lang_balance).items()):
            if need > have[lang]:
                out.append(f"need {need} general {lang} samples, only {have[lang]} available")
    elif n_g > len(general):
        out.append(f"need {n_g} general samples, only {len(general)} available")
    if not out and min(n_c, len(creative)) + n_g == 0:
        out.append("it would hold no samples")
    return out


def data_problems(ctx: Context, mixtures: Collection[str]) -> list[Problem]:
    """The creative source, the general files and every mixture in `mixtures`."""
    from ..mix.builder import MixSpec, MixtureError, build_mixture
    from ..mix.samples import from_triplets

    out: list[Problem] = []
    try:
        creative = from_triplets(creative_triplets(ctx))
    except (StepError, OSError, ValueError) as e:
        out.append(Problem("creative", str(e)))
        creative = None
    missing = [f for f in ctx.plan.general_files if not ctx.path(f).exists()]
    out += [Problem("general_files", f"no such file {ctx.path(f)}") for f in missing]
    if creative is None or missing:
        return out  # the counts would be wrong: say what is missing first
    try:
        general = general_pool(ctx)
    except (StepError, OSError, ValueError) as e:
        return [*out, Problem("general_files", str(e))]
    langs = Counter(s.lang or "?" for s in general)
    pools = (f"(creative: {len(creative)}; general: "
             + (", ".join(f"{n} {lang}" for lang, n in sorted(langs.items())) or "none") + ")")
    for m in ctx.plan.mixtures:
        if m.name not in mixtures:
            continue
        spec = MixSpec(**m.model_dump())
        short = shortfalls(spec, creative, general)
        if not short:
            try:
                build_mixture(creative, general, spec)
            except MixtureError as e:
                short = [str(e)]
        if short:
            out.append(Problem(f"mixture:{m.name}", "; ".join(short) + f" {pools}"))
    return out


# -- training and generation --------------------------------------------------------------------
def visible_gpus() -> int:
    """CUDA devices torch sees (0 without torch)."""
    if importlib.util.find_spec("torch") is None:
        return 0
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def machine_memory() -> int:
    """Physical memory in bytes (0 where unknown)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def base_model_params(ctx: Context) -> int | None:
    """Parameters of the base model: from its config.json, else from a size in its name
    ("Qwen2.5-7B-Instruct" -> 7e9); None when neither says."""
    from ..train.memory import Shape

    cfg = ctx.path(ctx.plan.base_model) / "config.json"
    if cfg.exists():
        try:
            return Shape.of(json.loads(cfg.read_text("utf-8"))).params
        except (ValueError, TypeError, KeyError, ZeroDivisionError):
            return None
    hit = re.search(r"(\d+(?:\.\d+)?)[bB](?![a-zA-Z])", Path(ctx.plan.base_model).name)
    return int(float(hit.group(1)) * 1e9) if hit else None


def train_problems(ctx: Context, trains: Collection[str], gpus: int) -> list[Problem]:
    plan, out = ctx.plan, []
    base = ctx.path(plan.base_model)
    hub_like = plan.base_model.count("/") == 1 and not plan.base_model.startswith((".", "/"))
    if base.exists() and not (base / "config.json").exists():
        out.append(Problem("base_model", f"{base} has no config.json (a model folder is needed)"))
    elif not base.exists() and not hub_like:
        out.append(Problem("base_model", f"no such folder {base}"))
    need = [m for m in ("torch", "transformers", "trl") if importlib.util.find_spec(m) is None]
    if need:
        out.append(Problem("training", f"needs {', '.join(need)}: pip install {' '.join(need)}"))
    params = base_model_params(ctx)
    for name in trains:
        settings = plan.training.for_model(name)
        strategy = str(plan.training.launcher.get("strategy") or settings.get("strategy") or "")
        nproc = int(plan.training.launcher.get("nproc") or 1)
        if strategy in GPU_STRATEGIES and gpus < max(1, nproc):
            out.append(Problem(f"train:{name}", f"strategy {strategy} needs {max(1, nproc)} "
                               f"GPU{'s' if nproc > 1 else ''}; {gpus} visible here"))
        lora = bool(settings.get("lora"))
        per = BYTES_PER_PARAM_LORA if lora else BYTES_PER_PARAM_FULL
        ram = machine_memory()
        if params and not gpus and ram and params * per > ram:
            out.append(Problem(f"train:{name}", f"{'LoRA' if lora else 'full'} fine-tuning of "
                               f"{plan.base_model} ({params / 1e9:.1f}B parameters) needs about "
                               f"{params * per / GIB:.0f} GiB for weights"
                               f"{'' if lora else ', gradients and AdamW states'}; no GPU is "
                               f"visible and this machine has {ram / GIB:.0f} GiB"))
    return out


def generation_problems(ctx: Context, gens: Collection[str], gpus: int) -> list[Problem]:
    g = ctx.plan.generation
    if not gens:
        return []
    where = "generation.engine"
    if g.engine == "llama.cpp":
        return [Problem(where, "llama.cpp serves .gguf files, and the trained models are "
                               "checkpoint folders: use transformers, vllm or sglang")]
    if g.engine == "transformers":
        need = [m for m in ("torch", "transformers") if importlib.util.find_spec(m) is None]
        return [Problem(where, f"transformers generation needs {', '.join(need)}")] if need else []
    installed = importlib.util.find_spec(g.engine) is not None or (
        g.engine == "vllm" and shutil.which("vllm") is not None)
    why = [] if installed else ["not installed here"]
    why += [] if gpus else ["needs a CUDA GPU, none is visible here"]
    if not why:
        return []
    models = ", ".join(m.name for m in ctx.plan.mixtures if m.name in gens)
    return [Problem(where, f"{g.engine} cannot serve {models}: {'; '.join(why)} (install it "
                           "on a GPU machine, or use engine: transformers)")]


def ray_problems(plan: Plan, executor: str, gpus: int) -> list[Problem]:
    if executor != "ray" or not plan.ray_gpus_per_task or plan.ray_address:
        return []
    if gpus < plan.ray_gpus_per_task:
        return [Problem("ray_gpus_per_task", f"each training/generation task asks Ray for "
                        f"{plan.ray_gpus_per_task:g} GPU, and the local Ray instance would have "
                        f"{gpus}: its tasks would wait forever (set 0, or ray_address)")]
    return []


# -- the judge ------------------------------------------------------------------------------------
Probe = Callable[[str, dict[str, str]], tuple[int | None, Any]]


def http_probe(url: str, headers: dict[str, str], timeout: float = 5.0) -> tuple[int | None, Any]:
    """GET `url`: (status, parsed JSON body or None), or (None, the error in words)."""
    import httpx

    try:
        r = httpx.get(url, headers=headers, timeout=timeout)
    except httpx.HTTPError as e:
        return None, f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
    try:
        return r.status_code, r.json()
    except ValueError:
        return r.status_code, None


def served_models(body: Any) -> list[str]:
    data = body.get("data") if isinstance(body, dict) else None
    return [str(m.get("id")) for m in data or [] if isinstance(m, dict) and m.get("id")]


def endpoint_problems(url: str, model: str, key_env: str, probe: Probe) -> list[str]:
    """Why one OpenAI-compatible endpoint cannot judge (it does not answer, refuses the key,
    or does not serve `model`)."""
    key = os.environ.get(key_env)
    status, body = probe(url.rstrip("/") + "/models", {"Authorization": f"Bearer {key}"} if key else {})
    if status is None:
        return [f"{url} does not answer ({body})"]
    if status in (401, 403):
        return [f"{url} refuses the request (HTTP {status}): set the key in ${key_env}"]
    if status != 200:
        return [f"{url} answered HTTP {status} to GET /models"]
    served = served_models(body)
    if served and model not in served:
        return [f"{url} does not serve the model {model!r} (it serves: {', '.join(served[:8])})"]
    return []


def judge_problems(ctx: Context, probe: Probe) -> list[Problem]:
    from ..llm import LLMError
    from ..llm.endpoints import Endpoint, load_endpoints
    from ..llm.models import MODELS

    j = ctx.plan.judge
    if j.backend == "local":
        name = j.model or "qwen2.5-coder-1.5b"
        if name in MODELS or (name.endswith(".gguf") and ctx.path(name).exists()):
            return []
        return [Problem("judge.model", f"{name!r} is neither an embedded model "
                                       f"({', '.join(sorted(MODELS))}) nor an existing .gguf file")]
    eps: list[Endpoint] = []
    out = []
    if j.endpoints:
        try:
            eps = load_endpoints(ctx.path(j.endpoints))
        except LLMError as e:
            out.append(Problem("judge.endpoints", str(e)))
    eps += [Endpoint(url=u) for u in j.base_url]
    if not eps and not out:
        return [Problem("judge", "the openai backend needs judge.base_url or judge.endpoints")]
    if not j.model or j.model.startswith("EDIT-ME"):
        return [*out, Problem("judge.model", f"{j.model!r} is a placeholder: set the name the "
                                             "judge server serves its model under")]
    for e in eps:
        out += [Problem("judge", m) for m in endpoint_problems(
            e.url, e.model or j.model, e.api_key_env or j.api_key_env, probe)]
    return out


# -- the whole plan -------------------------------------------------------------------------------
def check_plan(plan: Plan, folder: Path, *, steps: Collection[str] | None = None,
               executor: str | None = None, probe: Probe = http_probe,
               gpus: int | None = None) -> list[Problem]:
    """Every problem the steps in `steps` (default: all) would meet, in plan order."""
    names = {s.name for s in build_graph(plan)} if steps is None else set(steps)
    ctx = Context(plan, folder, store=None, log=lambda *_: None)
    of = {kind: {n.split(":", 1)[1] for n in names if n.startswith(kind + ":")}
          for kind in ("mixture", "train", "generate")}
    out: list[Problem] = []
    if "prompts" in names:
        try:
            select_prompts(ctx)
        except (StepError, OSError) as e:
            out.append(Problem("prompts", str(e)))
    if of["mixture"]:
        out += data_problems(ctx, of["mixture"])
    executor = executor or plan.executor
    need_gpus = of["train"] or of["generate"]
    n_gpus = (gpus if gpus is not None else visible_gpus()) if need_gpus else 0
    if of["train"]:
        out += train_problems(ctx, [m.name for m in plan.mixtures if m.name in of["train"]], n_gpus)
    out += generation_problems(ctx, of["generate"], n_gpus)
    if of["train"] or of["generate"]:
        out += ray_problems(plan, executor, n_gpus)
    if any(n.startswith("judge:") or n == "rank" for n in names):
        out += judge_problems(ctx, probe)
    return out


def merged(problems: list[Problem]) -> list[Problem]:
    """One line per message: the same problem of several steps names them together."""
    by: dict[str, list[str]] = {}
    for p in problems:
        by.setdefault(p.message, [])
        if p.where not in by[p.message]:
            by[p.message].append(p.where)
    return [Problem(", ".join(w), m) for m, w in by.items()]


def require_runnable(plan: Plan, folder: Path, **kw: Any) -> None:
    """Raise PlanProblems listing everything `check_plan` finds."""
    problems = merged(check_plan(plan, folder, **kw))
    if problems:
        raise PlanProblems(problems, folder)
