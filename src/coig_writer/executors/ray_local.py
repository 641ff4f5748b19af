"""The local Ray instance a driver starts, shut down completely: recorded in a state file,
followed by a reaper process (so a driver killed with -9 leaves nothing behind either), and
cleaned up by the next run when a reaper could not do it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

STATE = "ray-local-{pid}.json"  # one per driver: two runs may share a shard folder


def start_local(ray: Any, workers: int, state_dir: Path) -> None:
    """Start a local instance of `workers` CPUs bound to loopback, record its processes and
    start its reaper; leftovers of an earlier killed driver are ended first."""
    import psutil

    cleanup_leftovers(state_dir)
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False,
             _node_ip_address="127.0.0.1")
    me = psutil.Process()
    procs = [[p.pid, p.create_time()] for p in me.children(recursive=True)]
    state = state_dir / STATE.format(pid=me.pid)
    tmp = state.with_suffix(".tmp")
    tmp.write_text(json.dumps({"driver": me.pid, "driver_created": me.create_time(),
                               "procs": procs}), "utf-8")
    tmp.replace(state)
    subprocess.Popen([sys.executable, str(Path(__file__).with_name("ray_reaper.py")), str(state)],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)


def stop_local(ray: Any, state_dir: Path) -> None:
    """Shut the instance down and end whatever of it is still alive (the agents ignore
    SIGTERM); the reaper exits when the state file is gone."""
    from .ray_reaper import kill_all, known_tree

    state = state_dir / STATE.format(pid=os.getpid())
    known = _recorded(state)
    tree = known_tree(known) if known else {}
    ray.shutdown()
    if tree:
        kill_all(tree)
    state.unlink(missing_ok=True)


def _recorded(state: Path) -> list[list[float]]:
    try:
        return json.loads(state.read_text("utf-8"))["procs"]
    except (OSError, ValueError, KeyError):
        return []


def cleanup_leftovers(state_dir: Path) -> int:
    """End the processes of local instances whose driver is gone (a run killed before its
    reaper could act); returns how many were ended. A live driver's instance is left alone."""
    from .ray_reaper import alive, kill_all, known_tree

    n = 0
    for state in state_dir.glob(STATE.format(pid="*")):
        try:
            data = json.loads(state.read_text("utf-8"))
        except (OSError, ValueError):
            continue
        if alive(data["driver"], data["driver_created"]):
            continue
        n += kill_all(known_tree(data["procs"]))
        state.unlink(missing_ok=True)
    return n
