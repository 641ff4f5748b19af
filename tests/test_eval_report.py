"""Evaluation end to end without an LLM: prompts, answers, human rankings -> report."""

import json
import random
import re

import matplotlib.image as mpimg
import pytest
from typer.testing import CliRunner

from coig_writer.cli import app
from coig_writer.evaluate.analysis import analyze
from coig_writer.evaluate.generate import split_thinking
from coig_writer.evaluate.human import import_human_rankings
from coig_writer.evaluate.prompt_sets import add_prompt_set
from coig_writer.evaluate.report import write_report
from coig_writer.records import Generation
from coig_writer.store import Store

EVIL = "<script>alert('x')</script><b>bold</b>"


def populated(store: Store, tmp_path) -> None:
    assert add_prompt_set(store, "bundled-zh")[0] == 14
    assert add_prompt_set(store, "bundled-en")[0] == 14
    rng = random.Random(0)
    for p in store.evaluation.eval_prompts():
        for m, n in (("good", 300), ("mid", 200), ("bad", 100)):
            if p.lang == "zh":
                text = "".join(rng.choice("春夏秋冬山水花鸟风月人家灯火江河湖海") for _ in range(n))
            else:
                text = " ".join(rng.choice(["sea", "moon", "lamp", "river", "home", "wind", "bird",
                                            "night", "road"]) for _ in range(n // 4))
            if m == "bad" and p.id in ("en-001", "en-002"):
                text = "这是中文回答，" * 10  # wrong language for an English prompt
            if m == "mid" and p.id == "zh-001":
                text = EVIL + text
            cut = m == "bad" and p.id in ("zh-003", "zh-004", "en-005")  # still cut after retry
            store.evaluation.put_generation(Generation(model=m, prompt_id=p.id, raw=text, answer=text,
                                            truncated=cut, thinking="想" if m == "good" else ""))
    rows = []
    for p in store.evaluation.eval_prompts():
        # zh: good > mid > bad always; en: good and mid swap on even prompts
        order = ["good", "mid", "bad"]
        if p.lang == "en" and int(p.id[-1]) % 2 == 0:
            order = ["mid", "good", "bad"]
        rows.append({"prompt_id": p.id, "rater": "r1", "order": order})
    rows.append({"prompt_id": "zh-001", "rater": "r2"})  # malformed: quarantined
    f = tmp_path / "human.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in rows), "utf-8")
    n, bad = import_human_rankings(store, f)
    assert n == 28 and [b.line for b in bad] == [29]


def test_analysis_numbers(store, tmp_path):
    populated(store, tmp_path)
    r = analyze(store, source="human", rounds=200)
    o = r["overall"]
    assert o["models"] == ["good", "mid", "bad"]  # the order the models answered in
    g, m, b = 0, 1, 2
    assert o["win_rate"][g][b] == 1.0 and o["win_rate"][m][b] == 1.0
    # good beats mid on all 14 zh prompts and on the 7 odd en prompts (en-001, -003, ...)
    en_good_vs_mid = sum(1 for i in range(1, 15) if i % 10 % 2 == 1) / 14
    assert r["by_language"]["en"]["win_rate"][g][m] == pytest.approx(en_good_vs_mid)
    assert r["by_language"]["zh"]["win_rate"][g][m] == 1.0
    assert o["win_rate"][g][m] == pytest.approx((14 + 14 * en_good_vs_mid) / 28)
    assert r["cross_lingual_gap"][g][m] == pytest.approx(1 - en_good_vs_mid)
    assert o["bradley_terry"][g] > o["bradley_terry"][m] > o["bradley_terry"][b]
    assert o["sign_test_p"][g][b] < 1e-6
    assert r["contamination"]["bad"]["en"] == {"n": 14, "wrong_language": 2,
                                               "rate": pytest.approx(2 / 14)}
    assert r["contamination"]["good"]["zh"]["wrong_language"] == 0
    assert r["generations"]["bad"]["truncated"] == 3 and r["generations"]["good"]["truncated"] == 0
    assert r["generations"]["good"]["with_thinking"] == 28
    d = r["diversity"]["good"]["zh"]
    assert 0 < d["ttr_char"]["mean"] < 0.2 and d["chars"]["mean"] == 300
    assert r["diversity"]["bad"]["zh"]["ttr_char"]["mean"] > d["ttr_char"]["mean"]  # shorter
    assert "all:ttr_word" in r["diversity_vs_win_rate"]
    assert r["reference_paper"]["win_rate_vs_G"]["zh"]["CW+20k"] == 0.6275
    assert r["by_genre"]["crosstalk"]["n_prompts"] == 1


def test_report_files_and_escaping(store, tmp_path):
    populated(store, tmp_path)
    result = analyze(store, source="human", rounds=100)
    lengths = {m: [len(g.answer) for g in store.evaluation.generations(m)]
               for m in result["overall"]["models"]}
    files = write_report(result, lengths, tmp_path / "report")
    pngs = [p for k, p in files.items() if p.suffix == ".png"]
    assert len(pngs) == 6  # overall, zh, en heatmaps; diversity; lengths; length bias
    for p in pngs:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        img = mpimg.imread(p)
        assert img.shape[0] > 100 and img.shape[1] > 100 and img.std() > 0.01
    html = files["html"].read_text("utf-8")
    assert "No CJK font" not in html  # the bundled noto-cjk-sans-otc font
    assert "<script>" not in html and "The COIG-Writer paper (judge: human" in html
    assert re.search(r"<td>bad</td><td>28</td><td>3</td>", html)  # truncated answers counted
    data = json.loads(files["json"].read_text("utf-8"))
    assert data["overall"]["n_prompts"] == 28


def test_cli_report_and_judge_vs_human(tmp_path):
    db = tmp_path / "s.sqlite"
    with Store(db) as store:
        populated(store, tmp_path)
    out = tmp_path / "rep"
    r = CliRunner().invoke(app, ["eval", "report", "--db", str(db), "--source", "human",
                                 "--out", str(out), "--rounds", "50"])
    assert r.exit_code == 0, r.output
    assert (out / "report.html").exists()
    r = CliRunner().invoke(app, ["eval", "report", "--db", str(db), "--out", str(out)])
    assert r.exit_code == 2 and "no judge verdicts" in r.output


def test_split_thinking():
    assert split_thinking("<think>plan\nmore</think>\n\nThe answer") == ("plan\nmore", "The answer")
    assert split_thinking("<think>cut off by max_tokens") == ("cut off by max_tokens", "")
    assert split_thinking("plain answer") == ("", "plain answer")


def test_paper_numbers_beside_ours_against_g(store, tmp_path):
    from coig_writer.records import Judgment

    add_prompt_set(store, "bundled-zh")
    add_prompt_set(store, "bundled-en")
    for p in store.evaluation.eval_prompts():
        for m in ("CW+20k", "CW+2k", "G"):
            store.evaluation.put_generation(Generation(model=m, prompt_id=p.id, raw="t", answer="t" * 50))
        order = ["CW+20k", "G", "CW+2k"] if int(p.id[-1]) % 3 else ["G", "CW+2k", "CW+20k"]
        store.evaluation.put_judgment(Judgment(prompt_id=p.id, kind="rank", models=sorted(order),
                                    ranks={m: float(i) for i, m in enumerate(order, 1)},
                                    source="human", judge="r1"))
    r = analyze(store, source="human", rounds=50)
    assert r["overall"]["models"] == ["CW+20k", "CW+2k", "G"]  # CW+20k before CW+2k, as given
    files = write_report(r, {}, tmp_path / "rep")
    assert files["vs_g"].exists()
    html = files["html"].read_text("utf-8")
    assert "zh 62.7 / en 46.5" in html  # the paper's CW+20k vs G beside our BT row
