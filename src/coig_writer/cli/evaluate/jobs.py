"""What `eval generate` and `eval judge` share: the recorded run of an eval job and its closing
summary."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from ..common import console, print_stopped, warn
from ..jobs import watching
from ..summaries import accounting_table

if TYPE_CHECKING:
    from ...executors.runs import JobRun
    from ...executors.spec import ExecutorSpec
    from ...llm import BackendSpec, CachedBackend
    from ...store import Store


def run_eval(store: Store, job: Any, llm: CachedBackend, backend: BackendSpec,
             executor: ExecutorSpec, label: str) -> JobRun:
    """One recorded run (`eval-<kind>` in the runs table) of an eval job, with a progress bar."""
    from ...executors.runs import RunBook, run_recorded

    book = RunBook(store, f"eval-{job.kind}", {**job.spec(), "model": llm.model_id})
    with watching(label) as watch:
        return run_recorded(job, llm, book, executor, backend, watch=watch)


def print_outcome(run: JobRun, left: int = 0, what: str = "items",
                  as_json: dict | None = None) -> dict | None:
    """The run's outcome and usage table (and why it gave up, with what a rerun continues);
    with `as_json` (the command's own figures) nothing is printed and the machine-readable
    summary is returned instead."""
    out, info = run.outcome, run.info
    if as_json is not None:
        return {**as_json, "labels": dict(out.labels), "errors": out.errors,
                "stopped": out.stopped or None, "left_pending": left,
                "batch": info or None, "accounting": run.accounting, "totals": run.totals}
    loaded = info.get("loaded")
    if loaded:
        console.print(f"loaded {loaded['loaded']} answers from the batch file "
                      f"({loaded['failed']} failed, {loaded['unknown']} unknown)")
        for e in loaded["errors"][:20]:
            warn("batch", e)
    if "wave" in info:
        if info["wave"]:
            console.print(f"{info['requests']} requests written to {info['wave']}; submit it, "
                          "then rerun with --batch-in <output file>")
        else:
            console.print("no requests left: every item is finished")
    if any(r["calls"] for r in run.accounting):
        console.print(accounting_table(run.accounting))
    for key, e in out.errors.items():
        warn("failed", f"{key}: {e} (rerun to retry)", "red")
    print_stopped(out.stopped, left, what)
    if out.errors or out.stopped:
        raise typer.Exit(1)
    return None
