"""The report's plots render Chinese with the bundled Noto Sans CJK (PyPI noto-cjk-sans-otc)
on a machine without system CJK fonts: each run is a subprocess with a fresh matplotlib cache
whose font list is limited to matplotlib's own files (DejaVu), so no system font can help."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = r"""
import sys, warnings
import matplotlib
matplotlib.use("Agg")
from matplotlib import font_manager as fm
data = matplotlib.get_data_path()
fm.fontManager.ttflist = [f for f in fm.fontManager.ttflist if f.fname.startswith(data)]
assert not any("CJK" in f.name for f in fm.fontManager.ttflist)
from coig_writer.evaluate import report
if sys.argv[2] == "without-bundled":
    report.bundled_cjk_font = lambda: None
from coig_writer.evaluate.analysis import analyze
from coig_writer.records import Criterion, EvalPrompt, Generation, Judgment, RubricScore
from coig_writer.store import Store
from pathlib import Path
out = Path(sys.argv[1])
with Store(out / "s.sqlite") as s:
    for i in range(6):
        s.evaluation.put_eval_prompt(EvalPrompt(id=f"p{i}", lang="zh", prompt="写一首诗", genre="诗歌",
                                     criteria=[Criterion(name="意境")]))
        for m, n in (("甲模型", 30), ("乙模型", 20), ("丙模型", 10)):
            s.evaluation.put_generation(Generation(model=m, prompt_id=f"p{i}", raw="", answer="春" * n))
            s.evaluation.put_rubric_score(RubricScore(prompt_id=f"p{i}", model=m, criterion=0,
                                           score=n / 5 + i % 2, judge="评审"))
        for a, b in (("甲模型", "乙模型"), ("乙模型", "丙模型"), ("甲模型", "丙模型")):
            for x, y in ((a, b), (b, a)):
                s.evaluation.put_judgment(Judgment(prompt_id=f"p{i}", kind="pair", models=[x, y],
                                        winner=a if i % 3 else "tie", judge="评审",
                                        verdict="A>B"))
    result = analyze(s, rounds=50, baseline="丙模型")
    lengths = {m: [len(g.answer) for g in s.evaluation.generations(m)] for m in result["overall"]["models"]}
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    files = report.write_report(result, lengths, out / "rep")
print(sorted(p.name for p in files.values() if p.suffix == ".png"))
for w in caught:
    print("WARNING", w.message)
"""


def render(tmp_path: Path, mode: str) -> str:
    out = tmp_path / mode
    (out / "mpl").mkdir(parents=True)
    env = {**os.environ, "MPLCONFIGDIR": str(out / "mpl"), "XDG_CACHE_HOME": str(out)}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(out), mode], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_plots_render_chinese_with_the_bundled_font_only(tmp_path):
    pytest.importorskip("noto_cjk_sans_otc")
    out = render(tmp_path, "with-bundled")
    pngs = json.loads(out.splitlines()[0].replace("'", '"'))
    assert {"rubric_scores.png", "arena_scores.png", "win_rates.png", "length_bias.png"} <= set(pngs)
    assert "Glyph" not in out and "missing from font" not in out, out
    # the control: the same run without the bundled font misses the glyphs, so the test can fail
    control = render(tmp_path, "without-bundled")
    assert "missing from font" in control
