"""Run a plan's graph, resumably: a step whose inputs hash matches its finished record is
skipped; a changed input reruns exactly the steps downstream of it, saying why; a failed step
blocks its dependants while independent steps go on. With `executor: ray`, the trainings and
generations of a wave (steps with no dependency between them) run as Ray tasks."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .graph import Step, build_graph, explain_change, input_hash, step_inputs
from .plan import load_plan, plan_path
from .steps import Context, StepError, creative_digest, file_digest

REMOTE_KINDS = ("train", "generate")  # what Ray runs as tasks; the rest runs here


@dataclass
class RunResult:
    states: dict[str, str] = field(default_factory=dict)  # skipped, done, failed, blocked
    reasons: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(s in ("skipped", "done") for s in self.states.values())

    @property
    def nothing_done(self) -> bool:
        return all(s == "skipped" for s in self.states.values())


def waves(steps: list[Step]) -> list[list[Step]]:
    """Steps grouped by depth: no step depends on another of its own wave."""
    level: dict[str, int] = {}
    for s in steps:  # build_graph lists dependencies first
        level[s.name] = 1 + max((level[d] for d in s.deps), default=-1)
    out: list[list[Step]] = [[] for _ in range(max(level.values()) + 1)]
    for s in steps:
        out[level[s.name]].append(s)
    return out


def file_inputs(ctx: Context, step: Step) -> dict[str, Any] | None:
    """Digests of the files a step reads, so edited data reruns it."""
    from ..llm.transformers_backend import checkpoint_fingerprint

    if step.kind == "mixture":
        return {"creative": creative_digest(ctx),
                "general": {f: file_digest(ctx.path(f)) if ctx.path(f).exists() else None
                            for f in ctx.plan.general_files}}
    if step.kind == "train":
        base = ctx.path(ctx.plan.base_model)
        return {"base_model": checkpoint_fingerprint(base) if base.is_dir() else None}
    if step.kind == "prompts":
        return {s.source: file_digest(ctx.path(s.source)) for s in ctx.plan.eval_sets
                if ctx.path(s.source).is_file()} or None
    return None


def outputs_exist(rec: dict[str, Any]) -> bool:
    out = rec["outputs"]
    paths = [out.get(k) for k in ("train_data", "model_dir", "html")]
    return all(Path(p).exists() for p in paths if p)


def dispatch(ctx: Context, step: Step, up: dict[str, dict], h: str, fresh: bool
             ) -> tuple[dict, float | None]:
    from .eval_steps import run_generate, run_judge
    from .report import run_report
    from .steps import run_mixture, run_prompts, run_train

    if step.kind == "prompts":
        return run_prompts(ctx, step, up)
    if step.kind == "mixture":
        return run_mixture(ctx, step, up)
    if step.kind == "train":
        return run_train(ctx, step, up, fresh)
    if step.kind == "generate":
        return run_generate(ctx, step, up, h)
    if step.kind in ("judge", "rank"):
        return run_judge(ctx, step, up, h)
    return run_report(ctx, step, up, h)


def _remote_step(plan_file: str, name: str, up: dict[str, dict], h: str, fresh: bool
                 ) -> tuple[dict, float | None]:
    """One step in a Ray worker: the plan and store are reopened there (SQLite WAL lets
    several processes write the same store)."""
    from ..store import Store

    plan, folder = load_plan(plan_file)
    with Store(folder / "store.sqlite") as store:
        ctx = Context(plan, folder, store, log=lambda *_: None)
        step = next(s for s in build_graph(plan) if s.name == name)
        return dispatch(ctx, step, up, h, fresh)


def steps_to_run(ctx: Context, repo: Any, steps: list[Step]) -> list[str]:
    """The steps a run would not skip: those whose record does not match their inputs now,
    and everything downstream of them (assumed to change with them)."""
    outputs: dict[str, dict] = {}
    run: list[str] = []
    for step in steps:
        rec = repo.step(step.name)
        if rec is None or any(d in run for d in step.deps):
            run.append(step.name)
            continue
        try:
            h = input_hash(step_inputs(step, outputs, file_inputs(ctx, step)))
        except (StepError, OSError):
            h = None
        if rec["state"] == "done" and rec["input_hash"] == h and outputs_exist(rec):
            outputs[step.name] = rec["outputs"]
        else:
            run.append(step.name)
    return run


def run_plan(path: str | Path, *, executor: str | None = None,
             log: Callable[[str], None] = print, check: bool = True) -> RunResult:
    """Run (or resume) the plan at `path` (its folder or plan.yaml). With `check`, the steps
    that are to run are checked as a whole first (`check.require_runnable`): PlanProblems
    lists everything that would fail, and nothing runs."""
    from ..store import Store
    from .check import require_runnable

    plan, folder = load_plan(path)
    executor = executor or plan.executor
    res = RunResult()
    outputs: dict[str, dict] = {}
    with Store(folder / "store.sqlite") as store:
        repo = store.experiment
        ctx = Context(plan, folder, store, log)
        if check:
            todo_names = steps_to_run(ctx, repo, build_graph(plan))
            if todo_names:
                log(f"check   the {len(todo_names)} steps to run: data, mixtures, GPUs, judge")
            require_runnable(plan, folder, steps=todo_names, executor=executor)
        for wave in waves(build_graph(plan)):
            todo = []
            for step in wave:
                item = _plan_step(ctx, repo, step, outputs, res, log)
                if item:
                    todo.append(item)
            remote = [t for t in todo if executor == "ray" and t[0].kind in REMOTE_KINDS]
            if remote:
                _run_ray(ctx, repo, remote, outputs, res, log)
            for t in todo:
                if t not in remote:
                    _run_here(ctx, repo, t, outputs, res, log)
    return res


def _plan_step(ctx: Context, repo: Any, step: Step, outputs: dict[str, dict], res: RunResult,
               log: Callable[[str], None]) -> tuple[Step, str, dict, bool] | None:
    """Skip, block, or return (step, input hash, inputs, fresh) for running."""
    bad = [f"{d} {res.states[d]}" for d in step.deps if res.states.get(d) in ("failed", "blocked")]
    try:
        inputs = step_inputs(step, outputs, file_inputs(ctx, step))
    except (StepError, OSError) as e:
        inputs, bad = step_inputs(step, outputs), bad + [f"its input is unreadable ({e})"]
    h = input_hash(inputs)
    if bad:
        reason = ", ".join(bad)
        repo.block_step(step.name, h, inputs, reason)
        res.states[step.name], res.reasons[step.name] = "blocked", reason
        log(f"blocked {step.name}: {reason}")
        return None
    rec = repo.step(step.name)
    if rec and rec["state"] == "done" and rec["input_hash"] == h and outputs_exist(rec):
        outputs[step.name] = rec["outputs"]
        res.states[step.name] = "skipped"
        res.reasons[step.name] = f"unchanged since {rec['finished_at']}"
        log(f"skip    {step.name} (unchanged since {rec['finished_at']})")
        return None
    if rec is None:
        why = "new"
    elif rec["input_hash"] != h:
        why = "inputs changed: " + explain_change(rec["inputs"], inputs)
    elif rec["state"] == "running":
        why = "interrupted earlier; resuming"
    elif rec["state"] == "done":
        why = "its outputs are missing"
    else:
        why = f"{rec['state']} earlier; retrying"
    res.reasons[step.name] = why
    fresh = rec is None or rec["input_hash"] != h
    return step, h, inputs, fresh


def _record(repo: Any, step: Step, t0: float, result: Any, outputs: dict[str, dict],
            res: RunResult, log: Callable[[str], None]) -> None:
    secs = time.monotonic() - t0
    if isinstance(result, BaseException):
        msg = str(result) if isinstance(result, StepError) else \
            f"{type(result).__name__}: {result}"
        repo.finish_step(step.name, "failed", seconds=secs, error=msg[:2000])
        res.states[step.name], res.reasons[step.name] = "failed", msg
        log(f"FAILED  {step.name} after {secs:.1f} s: {msg}")
        return
    out, cost = result
    repo.finish_step(step.name, "done", out, seconds=secs, cost_usd=cost)
    outputs[step.name] = out
    res.states[step.name] = "done"
    log(f"done    {step.name} in {secs:.1f} s")


def _run_here(ctx: Context, repo: Any, item: tuple, outputs: dict[str, dict], res: RunResult,
              log: Callable[[str], None]) -> None:
    step, h, inputs, fresh = item
    log(f"run     {step.name} ({res.reasons[step.name]})")
    repo.start_step(step.name, h, inputs)
    t0 = time.monotonic()
    try:
        result: Any = dispatch(ctx, step, outputs, h, fresh)
    except Exception as e:  # noqa: BLE001 - a failed step is recorded, the others go on
        result = e
    _record(repo, step, t0, result, outputs, res, log)


def _run_ray(ctx: Context, repo: Any, items: list[tuple], outputs: dict[str, dict],
             res: RunResult, log: Callable[[str], None]) -> None:
    from ..executors.ray_executor import RayUnavailable

    try:
        import ray
    except ImportError:
        raise RayUnavailable("executor ray needs `pip install ray`") from None
    if not ray.is_initialized():
        ray.init(address=ctx.plan.ray_address, include_dashboard=False, log_to_driver=False,
                 ignore_reinit_error=True)
    task = ray.remote(num_cpus=1, num_gpus=ctx.plan.ray_gpus_per_task,
                      max_retries=0)(_remote_step)
    plan_file = str(plan_path(ctx.folder))
    started = []
    for step, h, inputs, fresh in items:
        repo.start_step(step.name, h, inputs)
        log(f"run     {step.name} ({res.reasons[step.name]}) as a Ray task")
        started.append((step, time.monotonic(),
                        task.remote(plan_file, step.name, dict(outputs), h, fresh)))
    for step, t0, ref in started:
        try:
            result: Any = ray.get(ref)
        except Exception as e:  # noqa: BLE001 - RayTaskError wraps the step's own error
            cause = getattr(e, "cause", None)
            result = cause if isinstance(cause, BaseException) else e
        _record(repo, step, t0, result, outputs, res, log)
