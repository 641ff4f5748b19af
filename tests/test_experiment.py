"""`coig-writer experiment` on the smoke preset: the tiny Qwen2 trained on two mixtures, its
answers from the transformers backend, the embedded 0.5B model as judge. One plan goes through
kill -9 and resume, a run with nothing to do, and a changed training setting."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from coig_writer.experiment.graph import build_graph, explain_change
from coig_writer.experiment.init import init_plan
from coig_writer.experiment.plan import PlanError, load_plan

pytest.importorskip("trl")
CLI = [sys.executable, "-m", "coig_writer.cli", "experiment"]


def _steps(folder: Path) -> dict[str, dict]:
    if not (folder / "store.sqlite").exists():
        return {}
    with sqlite3.connect(folder / "store.sqlite") as c:
        try:
            rows = c.execute("SELECT step, state, finished_at, input_hash FROM experiment_steps"
                             ).fetchall()
        except sqlite3.OperationalError:  # the runner has not created the table yet
            return {}
        return {r[0]: {"state": r[1], "finished_at": r[2], "hash": r[3]} for r in rows}


def _run(folder: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + ["run", str(folder)], capture_output=True, text=True,
                          timeout=timeout)


def _ran(stderr: str) -> set[str]:
    return {ln.split()[1] for ln in stderr.splitlines() if ln.startswith("run ")}


def _children(pid: int) -> list[int]:
    try:
        return [int(x) for x in open(f"/proc/{pid}/task/{pid}/children").read().split()]
    except FileNotFoundError:
        return []


def _alive(pid: int) -> bool:
    try:
        return open(f"/proc/{pid}/stat").read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_smoke_plan_kill_resume_nothing_to_do_and_changed_setting(small_model, tmp_path):
    folder = tmp_path / "smoke"
    init = subprocess.run(CLI + ["init", str(folder), "--preset", "smoke"], capture_output=True,
                          text=True, timeout=300)
    assert init.returncode == 0, init.stderr
    assert (folder / "plan.yaml").read_text().startswith("# coig-writer experiment plan")
    plan = yaml.safe_load((folder / "plan.yaml").read_text())
    for s in plan["eval_sets"]:  # 1 zh + 1 en prompt: half the judge calls of the preset
        s["limit"] = 1
    (folder / "plan.yaml").write_text(yaml.safe_dump(plan, allow_unicode=True))

    # 1. kill -9 while the second mixture (G) trains: its trainer dies with the runner
    log = (tmp_path / "run1.log").open("w")
    runner = subprocess.Popen(CLI + ["run", str(folder)], stdout=log, stderr=log)
    trainer = None
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and runner.poll() is None:
            st = _steps(folder)
            if st.get("train:G", {}).get("state") == "running" and _children(runner.pid):
                trainer = _children(runner.pid)[0]
                break
            time.sleep(0.5)
        assert trainer is not None, (tmp_path / "run1.log").read_text()[-3000:]
        assert _steps(folder)["train:CW"]["state"] == "done"
        first_cw = _steps(folder)["train:CW"]["finished_at"]
    finally:
        os.kill(runner.pid, signal.SIGKILL)
        runner.wait(timeout=30)
    deadline = time.monotonic() + 30
    while _alive(trainer) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(trainer), "the training process outlived the killed runner"

    # 2. the rerun finishes without retraining CW
    second = _run(folder)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "skip    train:CW" in second.stderr
    assert "run     train:G (interrupted earlier; resuming)" in second.stderr
    st = _steps(folder)
    assert st["train:CW"]["finished_at"] == first_cw
    assert all(s["state"] == "done" for s in st.values()), st
    result = json.loads((folder / "report/results.json").read_text())
    assert result["overall"]["models"] == ["CW", "G"]
    assert [r["model"] for r in result["experiment"]["table2"]] == ["CW"]
    assert result["experiment"]["judge"] == "llama.cpp:qwen2.5-coder-0.5b"
    html = (folder / "report/report.html").read_text()
    assert "Table 2 layout" in html and "zh paper" in html and "35.8" in html

    # 3. nothing changed: nothing runs, and it says so
    third = _run(folder)
    assert third.returncode == 0 and "nothing to do" in third.stdout
    assert _ran(third.stderr) == set()

    # 4. another learning rate for CW reruns CW's training, answers, verdicts and the report
    plan = yaml.safe_load((folder / "plan.yaml").read_text())
    plan["training"]["per_model"] = {"CW": {"learning_rate": 3e-4}}
    (folder / "plan.yaml").write_text(yaml.safe_dump(plan))
    status = subprocess.run(CLI + ["status", str(folder), "--json"], capture_output=True,
                            text=True, timeout=120)
    states = {r["step"]: r["state"] for r in json.loads(status.stdout)}
    assert states["train:CW"] == "stale" and states["train:G"] == "done"
    fourth = _run(folder)
    assert fourth.returncode == 0, fourth.stderr[-3000:]
    assert _ran(fourth.stderr) == {"train:CW", "generate:CW", "judge:CW", "report"}
    assert "settings.learning_rate 0.0001 -> 0.0003" in fourth.stderr
    assert "skip    train:G" in fourth.stderr and "skip    generate:G" in fourth.stderr
    table = subprocess.run(CLI + ["status", str(folder)], capture_output=True, text=True,
                           timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert table.returncode == 0 and "judge:CW" in table.stdout and "stale" not in table.stdout


def test_plan_errors_and_change_explanations(tmp_path):
    init_plan(tmp_path, "paper", triplets=None, db=tmp_path / "s.sqlite")
    plan, folder = load_plan(tmp_path)
    names = [s.name for s in build_graph(plan)]
    assert names[:6] == ["prompts", "mixture:CW", "mixture:CW+2k", "mixture:CW+10k",
                         "mixture:CW+20k", "mixture:G"]
    assert "judge:G" not in names and "judge:CW+20k" in names and names[-1] == "report"
    text = (tmp_path / "plan.yaml").read_text().replace("reference: G", "reference: H")
    (tmp_path / "plan.yaml").write_text(text)
    with pytest.raises(PlanError, match="reference 'H'"):
        load_plan(tmp_path)
    (tmp_path / "plan.yaml").write_text(text.replace("max_tokens: 4096", "max_tokns: 1"))
    with pytest.raises(PlanError, match=r"plan.yaml: generation.max_tokns"):
        load_plan(tmp_path)
    why = explain_change({"config": {"lr": 1}, "upstream": {"train:CW": "a"}},
                         {"config": {"lr": 2}, "upstream": {"train:CW": "b"}})
    assert why == "lr 1 -> 2; train:CW changed"
    bad = subprocess.run(CLI + ["run", str(tmp_path / "nowhere")], capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2 and "no plan at" in bad.stderr and "Traceback" not in bad.stderr


def test_failed_step_blocks_its_dependants_while_ray_runs_the_others(tmp_path):
    pytest.importorskip("ray")
    folder = tmp_path / "smoke"
    init_plan(folder, "smoke")
    plan = yaml.safe_load((folder / "plan.yaml").read_text())
    plan["mixtures"][1]["general"] = 100  # G cannot be built from 8 general rows
    (folder / "plan.yaml").write_text(yaml.safe_dump(plan))
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    # --no-check: the up-front check would refuse G (tests/test_experiment_check.py); here a
    # step fails while it runs
    run = subprocess.run(CLI + ["run", str(folder), "--executor", "ray", "--no-check"],
                         capture_output=True, text=True, timeout=600, env=env)
    assert run.returncode == 1, run.stderr[-3000:]
    assert "FAILED  mixture:G" in run.stderr and "only 4 available" in run.stderr
    assert "run     train:CW (new) as a Ray task" in run.stderr
    assert "blocked train:G: mixture:G failed" in run.stderr
    states = {s: v["state"] for s, v in _steps(folder).items()}
    assert states == {"prompts": "done", "mixture:CW": "done", "mixture:G": "failed",
                      "train:CW": "done", "train:G": "blocked", "generate:CW": "done",
                      "generate:G": "blocked", "judge:CW": "blocked", "report": "blocked"}
    status = subprocess.run(CLI + ["status", str(folder), "--json"], capture_output=True,
                            text=True, timeout=120, env=env)
    rows = {r["step"]: r for r in json.loads(status.stdout)}
    assert rows["report"]["error"] == "judge:CW blocked"
    assert rows["generate:CW"]["summary"].startswith("4 answers as CW@")
