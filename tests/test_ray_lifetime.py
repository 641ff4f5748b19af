"""Ray's lifetime (issue 21, failure 9): unwritable places are named before Ray starts; a driver
killed with -9 leaves no Ray process behind (the agents ignore SIGTERM) and its workers stop
sending requests."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from coig_writer.cli import app
from coig_writer.store import Store

from .review_fixtures import StageStub
from .test_scaleout import cli, fill

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")


def test_unwritable_store_and_shard_folder_are_named_before_ray_starts(tmp_path):
    db = tmp_path / "s.sqlite"
    with Store(db) as s:
        fill(s, 2)
    Path(f"{db}.shards").write_text("a file where the shard folder goes")
    args = ["--backend", "openai", "--base-url", "http://127.0.0.1:9/v1", "--model", "m",
            "--executor", "ray"]
    r = CliRunner().invoke(app, ["construct", "run", "--db", str(db), *args])
    assert r.exit_code == 2 and f"cannot write the Ray shard folder {db}.shards" in r.output
    blocked = tmp_path / "afile"
    blocked.write_text("")
    r = CliRunner().invoke(app, ["eval", "generate", "--name", "x", "--db",
                                 str(blocked / "s.sqlite"), *args])
    assert r.exit_code == 2 and f"{blocked} is not a folder" in r.output
    assert not ray.is_initialized()


def ray_processes(pid: int) -> list[psutil.Process]:
    return [p for p in psutil.Process(pid).children(recursive=True)]


def test_killed_driver_leaves_no_ray_process_and_workers_stop(tmp_path):
    db = tmp_path / "s.sqlite"
    with Store(db) as s:
        fill(s, 40)
    with StageStub(delay=0.2) as stub:
        driver = cli("construct", "run", "--db", str(db), "--backend", "openai", "--base-url",
                     stub.base_url, "--model", "stub", "--executor", "ray", "--workers", "2",
                     "--shard-size", "4", "--concurrency", "2")
        deadline = time.time() + 120
        while len(stub.requests) < 10 and time.time() < deadline and driver.poll() is None:
            time.sleep(0.05)
        assert driver.poll() is None, driver.stdout.read()
        procs = ray_processes(driver.pid)
        names = {p.name() for p in procs}
        assert {"raylet", "gcs_server", "ray::DashboardAgent"} <= names, names
        os.kill(driver.pid, signal.SIGKILL)  # the driver only, not its process group
        driver.wait(30)
        at_kill = len(stub.requests)
        gone, alive = psutil.wait_procs(procs, timeout=30)
        assert alive == [], [(p.pid, p.name()) for p in alive]
        time.sleep(1)
        # requests already on the wire may arrive; no worker takes a new item
        assert len(stub.requests) - at_kill <= 2 * 2 * 2
    assert not list(Path(f"{db}.shards").glob("ray-local-*.json"))


def test_a_rerun_ends_the_leftovers_of_a_killed_driver(tmp_path):
    """What the reaper could not end (it was killed too) the next run ends: only processes the
    state file recorded, checked by pid and start time, and their children."""
    import json
    import subprocess
    import sys

    from coig_writer.executors.ray_local import cleanup_leftovers

    ignore_term = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    agent = subprocess.Popen([sys.executable, "-c", ignore_term])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        time.sleep(0.5)
        state = {"driver": dead.pid, "driver_created": 0.0,
                 "procs": [[agent.pid, psutil.Process(agent.pid).create_time()],
                           [bystander.pid, 1.0]]}  # a reused pid: its start time differs
        (tmp_path / f"ray-local-{dead.pid}.json").write_text(json.dumps(state))
        assert cleanup_leftovers(tmp_path) == 1
        assert agent.wait(10) is not None and bystander.poll() is None
        assert not list(tmp_path.glob("ray-local-*.json"))
    finally:
        for p in (agent, bystander):
            if p.poll() is None:
                p.kill()
                p.wait()
