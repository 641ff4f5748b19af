import json

from typer.testing import CliRunner

from coig_writer.cli import app

from .conftest import SAMPLE

runner = CliRunner()


def test_ingest_status_stats_and_errors(tmp_path):
    db = str(tmp_path / "s.sqlite")
    r = runner.invoke(app, ["construct", "run", "--db", db])
    assert r.exit_code == 2 and "holds no texts" in r.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。"}\n{oops\n', "utf-8")
    r = runner.invoke(app, ["construct", "ingest", str(SAMPLE), str(bad), "--db", db])
    assert r.exit_code == 0, r.output
    assert "added 11" in r.output and f"{bad}:2" in r.output
    r = runner.invoke(app, ["construct", "quarantine", "--db", db])
    assert f"{bad}:2: invalid JSON" in r.output
    r = runner.invoke(app, ["construct", "ingest", str(tmp_path / "missing"), "--db", db])
    assert r.exit_code == 2 and "no such file" in r.output
    r = runner.invoke(app, ["construct", "ingest", str(SAMPLE), "--db", db, "--after", "May 1"])
    assert r.exit_code == 2 and "YYYY-MM-DD" in r.output
    r = runner.invoke(app, ["construct", "run", "--db", db, "--backend", "openai"])
    assert r.exit_code == 2 and "--base-url" in r.output


def test_stats_on_a_released_format_file(tmp_path):
    f = tmp_path / "cw.jsonl"
    f.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in [
        {"id": 1, "query": "写诗" * 5, "thought": "想" * 300, "answer": "诗" * 28, "query_type": "诗歌"},
        {"id": 2, "query": "写小说" * 10, "thought": "想" * 500, "answer": "文" * 2000,
         "query_type": "Novel"}]), "utf-8")
    r = runner.invoke(app, ["data", "stats", "--file", str(f)], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "2 triplets by category" in r.output
    assert "Poetry" in r.output and "10 / 10 / 10" in r.output and "2,000 / 2,000 / 2,000" in r.output


def test_prompts_and_genres_commands():
    r = runner.invoke(app, ["prompts", "list", "--lang", "en"])
    assert r.exit_code == 0 and "screen@v1/en#" in r.output
    r = runner.invoke(app, ["data", "genres", "--lang", "zh"])
    assert "相声" in r.output and "paper: 481" in r.output


JOB_OPTIONS = ["--backend", "--model", "--base-url", "--endpoints", "--api-key-env", "--concurrency",
               "--n-ctx", "--prompt-cache", "--timeout", "--max-failures", "--give-up-after",
               "--prices", "--executor", "--ray-address", "--workers", "--shard-size", "--batch-out",
               "--batch-in"]


def _command(*path: str):
    import typer

    cmd = typer.main.get_command(app)
    for name in path:
        cmd = cmd.commands[name]
    return cmd


def test_job_commands_show_the_same_backend_and_executor_options():
    helps = {}
    for path in (("construct", "run"), ("eval", "generate"), ("eval", "judge")):
        by_flag = {f: p.help for p in _command(*path).params for f in p.opts}
        helps[path] = {f: by_flag.get(f) for f in JOB_OPTIONS}
        assert all(helps[path].values()), (path, helps[path])
        r = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "250"})
        assert r.exit_code == 0 and all(f in r.output for f in JOB_OPTIONS), r.output
        assert "Example" in r.output
    first = helps[("construct", "run")]
    assert all(h == first for h in helps.values())
    assert all(k in first["--backend"] for k in ("local", "openai", "transformers"))


def test_bad_backend_and_executor_options_exit_2_with_the_reason(tmp_path):
    db = str(tmp_path / "s.sqlite")
    r = runner.invoke(app, ["construct", "run", "--db", db, "--executor", "spark"])
    assert r.exit_code == 2 and "--executor must be local or ray, got 'spark'" in r.output
    r = runner.invoke(app, ["eval", "generate", "--name", "m", "--db", db, "--batch-out", db])
    assert r.exit_code == 2 and "batch files need --backend openai" in r.output
    r = runner.invoke(app, ["eval", "judge", "a", "b", "--db", db, "--timeout", "0"])
    assert r.exit_code == 2 and "--timeout must be > 0" in r.output


def test_eval_generate_records_its_run(tmp_path):
    from coig_writer.store import Store

    from .servers import _Server, completion

    db = str(tmp_path / "s.sqlite")
    r = runner.invoke(app, ["eval", "prompts", "bundled-zh", "--db", db])
    assert r.exit_code == 0, r.output
    with _Server(lambda body: (200, completion("答" * 5), 0.0)) as srv:
        r = runner.invoke(app, ["eval", "generate", "--name", "m", "--db", db, "--backend", "openai",
                                "--base-url", srv.base_url, "--model", "srv", "--concurrency", "3",
                                "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    with Store(db) as s:
        prompts = len(s.evaluation.eval_prompts())
        run = s.runs.runs()[-1]
        config = s.runs.run_config(run["id"])
    assert config["executor"] == "local" and config["concurrency"] == 3 and config["model"]
    assert doc["new_answers"] == prompts > 0 and doc["totals"]["calls"] == prompts
    assert run["kind"] == "eval-generate" and run["summary"]["labels"] == doc["labels"]
    assert run["summary"]["totals"]["calls"] == prompts
