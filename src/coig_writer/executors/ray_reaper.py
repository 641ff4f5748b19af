"""Reaper of a local Ray instance: started (as a plain script, in its own session) by the driver
that started the instance, it follows the driver and, once the driver is gone (killed with -9
included), ends every process of that instance: gcs_server, raylet, the dashboard and runtime-env
agents (which ignore SIGTERM) and the workers. Only processes recorded in the state file and
their descendants are touched, each checked by pid and start time.

Usage: python ray_reaper.py STATE_FILE (the state file is JSON written by `ray_local`).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import psutil


def alive(pid: int, created: float) -> psutil.Process | None:
    """The process `pid` if it is the one started at `created` and no zombie; else None."""
    try:
        p = psutil.Process(pid)
        return p if abs(p.create_time() - created) < 1.0 and p.status() != "zombie" else None
    except psutil.Error:
        return None


def known_tree(recorded: list[list[float]]) -> dict[int, float]:
    """The recorded processes that still live, and all their descendants: pid -> start time."""
    out: dict[int, float] = {}
    for pid, created in recorded:
        p = alive(int(pid), created)
        if p is None:
            continue
        out[p.pid] = created
        try:
            for c in p.children(recursive=True):
                out[c.pid] = c.create_time()
        except psutil.Error:
            pass
    return out


def kill_all(known: dict[int, float], grace_s: float = 2.0) -> int:
    """SIGTERM, then SIGKILL after `grace_s`, every process of `known` still alive."""
    procs = [p for pid, t in known.items() if (p := alive(pid, t)) is not None]
    for p in procs:
        try:
            p.terminate()
        except psutil.Error:
            pass
    _, left = psutil.wait_procs(procs, timeout=grace_s)
    for p in left:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(left, timeout=grace_s)
    return len(procs)


def main(state_file: str) -> None:
    path = Path(state_file)
    state = json.loads(path.read_text("utf-8"))
    known = {int(pid): t for pid, t in state["procs"]}
    while path.exists():
        if alive(state["driver"], state["driver_created"]) is None:
            known.update(known_tree([[pid, t] for pid, t in known.items()]))
            kill_all(known)
            path.unlink(missing_ok=True)
            return
        known.update(known_tree([[pid, t] for pid, t in known.items()]))
        time.sleep(0.5)


if __name__ == "__main__":
    main(sys.argv[1])
