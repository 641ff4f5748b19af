"""`coig-writer experiment`: the paper's experiment as one resumable plan."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from .common import console, err, fail
from .options import (
    ExecutorOpt,
    GeneralFilesOpt,
    JsonOpt,
    PlanDbOpt,
    PlanPresetOpt,
    ReviewedOpt,
    TripletsOpt,
)

experiment_app = typer.Typer(help="Mixtures -> training -> generation -> judging -> report, as "
                             "one resumable plan.", no_args_is_help=True)


@experiment_app.command("init")
def experiment_init_cmd(
    folder: Path = typer.Argument(..., help="Plan folder (everything the plan makes goes here)."),
    preset: PlanPresetOpt = "paper",
    triplets: TripletsOpt = None,
    reviewed: ReviewedOpt = False,
    db: PlanDbOpt = None,
    general_files: GeneralFilesOpt = [],  # noqa: B006 - typer copies the default
    base_model: str | None = typer.Option(None, help="Base model folder or hub id."),
    judge_base_url: list[str] = typer.Option([], help="Judge server URL (repeatable)."),
    judge_model: str | None = typer.Option(None, help="Judge model name."),
    check: bool = typer.Option(True, help="Check the plan as a whole once written (data, "
                               "mixtures, GPUs, judge endpoint); --no-check for a plan that "
                               "runs on another machine."),
) -> None:
    """Write FOLDER/plan.yaml from a preset and check it as a whole (exit 2 with every problem
    found); read and edit it, then `experiment run FOLDER`.

    Example: coig-writer experiment init exp/paper --preset paper --general-file zh.jsonl
    --general-file en.jsonl --judge-base-url http://judge:8000/v1 --judge-model qwen-72b

    Example: coig-writer experiment init exp/smoke --preset smoke
    """
    from ..experiment.init import init_plan
    from ..experiment.plan import PlanError

    for f in [*general_files, *([triplets] if triplets else [])]:
        if not f.exists():
            raise fail(f"no such file: {f}")
    judge = {"base_url": judge_base_url, "model": judge_model}
    if judge_base_url:
        judge["backend"] = "openai"
    try:
        path = init_plan(folder, preset, triplets=triplets, reviewed=reviewed, db=db,
                         general_files=general_files, base_model=base_model, judge=judge)
    except (PlanError, ValueError) as e:
        raise fail(str(e)) from None
    if check:
        from ..experiment.check import PlanProblems, require_runnable
        from ..experiment.plan import load_plan

        try:
            require_runnable(*load_plan(path))
        except PlanProblems as e:
            raise fail(f"plan written to {path}, but {e}\nedit the plan (or the data), then run: "
                       f"coig-writer experiment run {folder}") from None
    console.print(f"plan written to {path}; edit it, then run: coig-writer experiment run {folder}")


@experiment_app.command("run")
def experiment_run_cmd(
    plan: Path = typer.Argument(..., help="Plan folder or its plan.yaml."),
    executor: ExecutorOpt = None,
    check: bool = typer.Option(True, help="Check the steps to run as a whole first (data, "
                               "mixtures, GPUs, judge endpoint); --no-check lets steps fail "
                               "where they fail."),
) -> None:
    """Run the plan: only steps whose inputs changed since they last finished (each says why);
    a failed step stops its dependants, the others go on. Safe to kill and rerun. --executor
    overrides the plan's. First the steps to run are checked as a whole: every problem is
    listed at once (exit 2), before anything runs.

    Example: coig-writer experiment run exp/smoke
    """
    from ..executors.ray_executor import RayUnavailable
    from ..experiment.check import PlanProblems
    from ..experiment.plan import PlanError
    from ..experiment.runner import run_plan

    if executor not in (None, "local", "ray"):
        raise fail(f"--executor must be local or ray, got {executor!r}")
    try:
        res = run_plan(plan, executor=executor, check=check,
                       log=lambda line: err.print(line, markup=False, highlight=False))
    except PlanProblems as e:
        raise fail(f"{e}\nnothing was run; fix these (or pass --no-check) and run again") from None
    except (PlanError, RayUnavailable) as e:
        raise fail(str(e)) from None
    if res.nothing_done:
        console.print(f"nothing to do: all {len(res.states)} steps are unchanged since they "
                      "finished")
    else:
        counts = {s: list(res.states.values()).count(s) for s in
                  ("done", "skipped", "failed", "blocked")}
        console.print(", ".join(f"{n} {s}" for s, n in counts.items() if n))
    report = Path(plan) if Path(plan).is_dir() else Path(plan).parent
    if res.states.get("report") in ("done", "skipped"):
        console.print(f"report: {report / 'report' / 'report.html'}")
    if not res.ok:
        raise typer.Exit(1)


@experiment_app.command("status")
def experiment_status_cmd(
    plan: Path = typer.Argument(..., help="Plan folder or its plan.yaml."),
    as_json: JsonOpt = False,
) -> None:
    """Every step with its state, input hash, outputs, time and cost; `pending` for steps not
    run yet, `stale` when the plan or data changed since a step finished.

    Example: coig-writer experiment status exp/smoke
    """
    from ..experiment.plan import PlanError
    from ..experiment.status import plan_status

    try:
        rows = plan_status(plan)
    except PlanError as e:
        raise fail(str(e)) from None
    if as_json:
        console.print_json(json.dumps(rows, ensure_ascii=False))
        return
    from rich.table import Table
    from rich.text import Text

    t = Table(title=f"experiment {plan}")
    for c in ("step", "state", "input hash", "outputs", "seconds", "cost $", "note"):
        t.add_column(c, justify="right" if c in ("seconds", "cost $") else "left",
                     overflow="fold")
    style = {"done": "green", "failed": "red", "blocked": "red", "running": "yellow",
             "stale": "yellow"}
    for r in rows:
        st = r["state"]
        t.add_row(r["step"], f"[{style.get(st, 'white')}]{st}[/]", (r["input_hash"] or "")[:12],
                  Text(r["summary"]), f"{r['seconds']:.1f}" if r["seconds"] is not None else "–",
                  f"{r['cost_usd']:.4f}" if r["cost_usd"] is not None else "–",
                  Text(r["error"] or r["note"] or ""))
    console.print(t)
