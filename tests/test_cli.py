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
