"""Commands that only read open the store read-only (issue 21, failure 8): they work on a
chmod -w store file and folder and on a read-only mount, and never change the file."""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from coig_writer.cli import app
from coig_writer.store import Store

from .test_eval_report import populated

SRC = str(Path(__file__).resolve().parents[1] / "src")


def commands(db: Path, out: Path, heavy: bool = False) -> list[list[str]]:
    cmds = [["construct", "status", "--db", str(db)], ["construct", "quarantine", "--db", str(db)],
            ["data", "export", str(out / "x.jsonl"), "--db", str(db), "--status", "all"],
            ["data", "stats", "--db", str(db)]]
    return cmds + ([["data", "publish", str(out / "release"), "--db", str(db), "--status", "all"],
                    ["eval", "report", "--out", str(out / "report"), "--db", str(db), "--source",
                     "human", "--rounds", "20"]] if heavy else [])


@pytest.fixture
def published(tmp_path: Path) -> Path:
    folder = tmp_path / "published"
    folder.mkdir()
    db = folder / "s.sqlite"
    with Store(db) as s:
        populated(s, tmp_path)
        from coig_writer.records import Triplet

        s.construct.put_triplet(Triplet(id="t1", query="写", thought="想", answer="文",
                                        status="accepted"))
    return db


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file modes (the mount test covers it)")
def test_read_only_commands_on_a_chmod_w_store(published, tmp_path):
    before = sha(published)
    os.chmod(published, 0o444)
    os.chmod(published.parent, 0o555)
    try:
        for cmd in commands(published, tmp_path / "out"):
            r = CliRunner().invoke(app, cmd)
            assert r.exit_code == 0, (cmd, r.output[-1500:])
    finally:
        os.chmod(published.parent, 0o755)
        os.chmod(published, 0o644)
    assert sha(published) == before
    assert (tmp_path / "out" / "x.jsonl").read_text("utf-8").count("\n") == 1


@pytest.mark.skipif(not shutil.which("unshare"), reason="needs unshare for a read-only mount")
def test_read_only_commands_on_a_read_only_mount(published, tmp_path):
    """root ignores chmod; a read-only bind mount refuses every write, root's included."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    before = sha(published)
    db = mnt / published.name
    run = " && ".join(shlex.join([sys.executable, "-m", "coig_writer.cli", *c])
                      for c in commands(db, tmp_path / "out", heavy=True))
    script = (f"mount --bind {published.parent} {mnt} && mount -o remount,bind,ro {mnt} && "
              f"touch {mnt}/probe 2>/dev/null && exit 99; {run}")
    r = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True,
                       timeout=600, env={**os.environ, "PYTHONPATH": SRC})
    if r.returncode != 0 and "mount" in r.stderr and "permission" in r.stderr.lower():
        pytest.skip("no permission to mount here")
    assert r.returncode == 0, (r.stdout[-500:], r.stderr[-2000:])
    assert sha(published) == before
    assert sorted(p.name for p in published.parent.iterdir()) == ["s.sqlite"]
