"""Bad input never loses a good row: BOMs, wrong types, list-of-parts chat content, folders
(issue 21, failures 1-4). Every reader is driven through its CLI command."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from coig_writer.cli import app
from coig_writer.records import EvalPrompt, Generation
from coig_writer.store import Store

BOM = "\ufeff"
HANZI = [chr(c) for c in range(0x4E00, 0x4E00 + 2500)]


def cli(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def jsonl(path: Path, rows: list, bom: bool = False) -> Path:
    text = "\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows)
    path.write_text((BOM if bom else "") + text + "\n", "utf-8")
    return path


def text(r: random.Random) -> str:
    return "".join(r.choice(HANZI) for _ in range(60))


def test_bad_row_in_the_middle_of_a_batch_loses_no_good_row(tmp_path):
    """2,500 rows, `"title": 7` at line 1,501 (inside the second 1,000-row batch)."""
    r = random.Random(0)
    rows = [{"id": f"t{i}", "title": f"题{i}", "text": text(r)} for i in range(2500)]
    rows[1500]["title"] = 7
    rows[2100]["author"] = ["a", "b"]
    db = tmp_path / "s.sqlite"
    res = cli("construct", "ingest", jsonl(tmp_path / "in.jsonl", rows), "--db", db)
    assert res.exit_code == 0, res.output
    assert "added 2498" in res.output and "quarantined 2" in res.output
    with Store(db) as s:
        assert sum(s.corpus.count_sources().values()) == 2498
        bad = {q.line: q.error for q in s.corpus.iter_quarantine()}
    assert set(bad) == {1501, 2101}
    assert "field 'title'" in bad[1501] and "(got 7)" in bad[1501]
    assert "field 'author'" in bad[2101]


def test_a_bad_row_at_1501_of_2500_stores_2499(tmp_path):
    r = random.Random(1)
    rows = [{"text": text(r)} for _ in range(2500)]
    rows[1500] = {"text": text(r), "title": {"x": 1}}
    db = tmp_path / "s.sqlite"
    res = cli("construct", "ingest", jsonl(tmp_path / "in.jsonl", rows), "--db", db)
    assert res.exit_code == 0 and "added 2499" in res.output and "quarantined 1" in res.output


def test_bom_first_row_kept_by_ingest_and_data_import(tmp_path):
    db = tmp_path / "s.sqlite"
    src = jsonl(tmp_path / "c.jsonl", [{"id": "a", "text": "床前明月光，疑是地上霜。举头望明月。"},
                                       {"id": "b", "text": "白日依山尽，黄河入海流。欲穷千里目。"}],
                bom=True)
    res = cli("construct", "ingest", src, "--db", db)
    assert res.exit_code == 0 and "added 2" in res.output and "quarantined 0" in res.output
    (tmp_path / "c.txt").write_text(BOM + "# 静夜思\n床前明月光，疑是地上霜。举头望明月。", "utf-8")
    with Store(tmp_path / "t.sqlite") as s:
        from coig_writer.construct.ingest import ingest

        ingest([tmp_path / "c.txt"], s)
        assert [x.provenance.title for x in s.corpus.iter_sources()] == ["静夜思"]
    trip = [{"id": 1, "query": "写", "thought": "想", "answer": "文"},
            {"id": 2, "query": "写", "thought": "想", "answer": "文二"}]
    res = cli("data", "import", jsonl(tmp_path / "t.jsonl", trip, bom=True), "--db", db)
    assert res.exit_code == 0 and "imported 2 triplets, quarantined 0" in res.output
    arr = tmp_path / "t.json"
    arr.write_text(BOM + json.dumps(trip), "utf-8")
    res = cli("data", "import", arr, "--db", db)
    assert "imported 2 triplets, quarantined 0" in res.output


def test_data_import_quarantines_wrong_types_and_keeps_the_rest(tmp_path):
    db = tmp_path / "s.sqlite"
    rows = [{"id": 1, "query": "写", "thought": "想", "answer": "文"},
            {"id": 2, "query": "写", "thought": "想", "answer": "文", "scores": "x"},
            {"id": 3, "query": 5, "thought": "想", "answer": "文"},
            {"id": [3], "query": "写", "thought": "想", "answer": "文"},
            b"\xff\xfe".decode("latin-1"),
            {"id": 4, "query": "写", "thought": "想", "answer": "文"}]
    res = cli("data", "import", jsonl(tmp_path / "t.jsonl", rows), "--db", db)
    assert res.exit_code == 0, res.output
    assert "imported 2 triplets, quarantined 4" in res.output
    assert "t.jsonl:2: field 'scores'" in res.output and "t.jsonl:3: field 'query'" in res.output
    assert "t.jsonl:4: field 'id'" in res.output
    assert "Traceback" not in res.output


def test_mix_build_list_of_parts_bom_and_wrong_types(tmp_path):
    trip = jsonl(tmp_path / "cw.jsonl", [{"id": i, "query": f"写{i}", "thought": "想",
                                          "answer": f"文{i}"} for i in range(2)], bom=True)
    parts = [{"type": "text", "text": "Explain "}, {"type": "text", "text": "tides."}]
    rows = [{"messages": [{"role": "user", "content": parts},
                          {"role": "assistant", "content": [{"type": "text",
                                                             "text": "The moon pulls."}]}]},
            {"messages": [{"role": 3, "content": "x"}, {"role": "assistant", "content": "y"}]},
            {"messages": [{"role": "user", "content": 5}, {"role": "assistant", "content": "y"}]},
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]},
                          {"role": "assistant", "content": "y"}]},
            {"prompt": "q", "response": "a", "lang": ["en"]},
            {"prompt": "q2", "response": "a2"}]
    gen = jsonl(tmp_path / "g.jsonl", rows, bom=True)
    res = cli("mix", "build", "--triplets", trip, "--general-file", gen, "--ratio", "1:1",
              "--out", tmp_path / "m")
    assert res.exit_code == 0, res.output
    assert "'creative': 2, 'general': 2" in res.output
    for line, field in ((2, "messages.0.role"), (3, "messages.0.content"), (4, "content"),
                        (5, "lang")):
        assert f"g.jsonl:{line}: field '{field}'" in res.output, res.output
    trl = (tmp_path / "m" / "train.jsonl").read_text("utf-8")
    assert "Explain tides." in trl and "The moon pulls." in trl


def _prompts(store: Store) -> None:
    for pid in ("p1", "p2"):
        store.evaluation.put_eval_prompt(EvalPrompt(id=pid, lang="en", prompt=f"Write {pid}."))
        for m in ("A", "B"):
            store.evaluation.put_generation(Generation(model=m, prompt_id=pid, raw="x", answer="x"))


def test_eval_prompts_bom_and_wrong_types(tmp_path):
    db = tmp_path / "s.sqlite"
    f = jsonl(tmp_path / "p.jsonl", [{"id": "p1", "lang": "en", "prompt": "Write."},
                                     {"id": "p2", "lang": "en", "prompt": ["Write."]},
                                     {"id": "p3", "lang": "fr", "prompt": "Écris."},
                                     {"id": "p4", "lang": "zh", "prompt": "写。"}], bom=True)
    res = cli("eval", "prompts", f, "--db", db)
    assert res.exit_code == 0, res.output
    assert "2 prompts" in res.output
    assert "p.jsonl:2: field 'prompt'" in res.output and "p.jsonl:3: field 'lang'" in res.output


def test_import_generations_validates_types_and_prompts(tmp_path):
    db = tmp_path / "s.sqlite"
    with Store(db) as s:
        _prompts(s)
    rows = [{"prompt_id": "p1", "answer": "fine"},
            {"prompt_id": "p2", "answer": ["x"]},
            {"prompt_id": "p2", "answer": 5},
            {"prompt_id": "nope", "answer": "y"},
            {"uid": "p2", "messages": [{"role": "user", "content": "Write p2."},
                                       {"role": "assistant",
                                        "content": [{"type": "text", "text": "parts"}]}]}]
    res = cli("eval", "import-generations", jsonl(tmp_path / "g.jsonl", rows, bom=True),
              "--name", "C", "--db", db)
    assert res.exit_code == 0, res.output
    assert "2 answers imported" in res.output and "3 rows not imported" in res.output
    assert "g.jsonl:2: field 'answer'" in res.output and "g.jsonl:3: field 'answer'" in res.output
    assert "g.jsonl:4: prompt 'nope' is not loaded" in res.output
    with Store(db) as s:
        assert [g.answer for g in s.evaluation.generations(model="C")] == ["fine", "parts"]


def test_import_human_validates_rankings(tmp_path):
    db = tmp_path / "s.sqlite"
    with Store(db) as s:
        _prompts(s)
    rows = [{"prompt_id": "p1", "rater": "r1", "order": ["B", "A"]},
            {"prompt_id": "p1", "rater": "r2", "ranks": [1, 2]},
            {"prompt_id": "p1", "rater": "r3", "order": "AB"},
            {"prompt_id": "p9", "rater": "r1", "order": ["A", "B"]},
            {"prompt_id": "p2", "rater": "r1", "order": ["A", "C"]},
            {"prompt_id": "p2", "rater": "r1", "order": ["A", "A"]},
            {"prompt_id": "p2", "rater": "r1", "order": ["A"]},
            {"prompt_id": "p2", "rater": "r1", "ranks": {"A": 1, "B": 1}}]
    res = cli("eval", "import-human", jsonl(tmp_path / "h.jsonl", rows, bom=True), "--db", db)
    assert res.exit_code == 0, res.output
    assert "imported 2 rankings, quarantined 6" in res.output
    out = res.output
    assert "h.jsonl:2: field 'ranks'" in out and "h.jsonl:3: field 'order'" in out
    assert "h.jsonl:4: prompt 'p9' is not loaded" in out
    assert "h.jsonl:5: no answer of 'C'" in out and "h.jsonl:6: field 'order': a model is named twice" in out
    assert "h.jsonl:7: the ranking leaves out 'B'" in out


@pytest.mark.parametrize("command", [
    ["construct", "ingest"], ["data", "import"], ["mix", "build", "--general-file"],
    ["eval", "prompts"], ["eval", "import-generations", "--name", "m"], ["eval", "import-human"]])
def test_folders_and_non_files_are_refused_with_exit_2(tmp_path, command):
    folder = tmp_path / "x.jsonl"
    folder.mkdir()
    (tmp_path / "plain").mkdir()
    db = tmp_path / "s.sqlite"
    targets = [tmp_path / "missing.jsonl", Path("/dev/null")]
    if command != ["construct", "ingest"]:  # ingest walks folders (txt/md corpora) by design
        targets += [folder, tmp_path / "plain"]
    for target in targets:
        res = cli(*command, target, "--db", db)
        assert res.exit_code == 2, (target, res.output)
        assert str(target) in res.output and "Traceback" not in res.output
        assert not isinstance(res.exception, OSError)
    assert not db.exists()  # refused before the store was created
