"""`review calibration` on review decisions written through the review service, as the app
writes them, whose confusion counts, precision, recall and planted thresholds are known by
construction."""

import json

import pytest
from typer.testing import CliRunner

from coig_writer.cli import app
from coig_writer.records import SCORE_DIMENSIONS, Scores, Triplet
from coig_writer.review import service
from coig_writer.review.auth import add_user
from coig_writer.review.calibration import Rules, calibrate, calibration_of_store, read_units
from coig_writer.store import Store

from .review_fixtures import PASSWORD

POLICY = service.ReviewPolicy(k=2, per_genre={"poetry": 3})


def ints(low: int, total: int) -> Scores:
    """Six scores whose smallest is `low` and whose sum is `total`."""
    rest = total - low
    vals = [low] + [rest // 5 + (i < rest % 5) for i in range(5)]
    assert min(vals) == low and sum(vals) == total and max(vals) <= 10
    return Scores(**dict(zip(SCORE_DIMENSIONS, vals, strict=True)))


def floats(low: float, total: float) -> dict[str, float]:
    vals = [low] + [(total - low) / 5] * 5
    assert min(vals) == low
    return dict(zip(SCORE_DIMENSIONS, vals, strict=True))


# id: (integer scores (min, sum), expected scores (min, sum) or None, the pipeline's verdict,
#      genre (poetry gets 3 reviewers), the reviewers' decisions in assignment order).
# Humans accept exactly the items with min >= 7 and sum >= 45 (integer scores) and, among those
# with expected scores, min >= 6.5 and sum >= 44 (expected scores); A* are accepted, R* are not.
ITEMS = {
    "A1": ((7, 45), (6.6, 44.2), "accepted", "letter", ["accept", "accept"]),  # tp
    "A2": ((8, 52), (7.5, 50.0), "accepted", "letter", ["accept", "edit"]),  # tp (edit = accept)
    "A3": ((9, 57), (8.8, 55.1), "accepted", "poetry", ["accept", "accept", "accept"]),  # tp
    "A4": ((7, 50), None, "needs_review", "letter", ["accept", "accept"]),  # fn
    "R1": ((6, 50), (6.3, 48.0), "accepted", "letter", ["reject", "send_back"]),  # fp
    "R2": ((7, 44), (7.0, 43.6), "accepted", "poetry", ["accept", "reject", "reject"]),  # fp
    "R3": ((5, 40), None, "needs_review", "letter", ["reject", "reject"]),  # tn
    "R4": ((4, 30), (6.9, 43.9), "needs_review", "letter", ["reject", "accept"]),  # tie: tn
    "S1": ((9, 56), None, "accepted", "letter", ["accept"]),  # one decision: left out
    "U1": ((9, 56), None, "accepted", "letter", []),  # not reviewed: left out
}


def decide_all(s: Store, item: str, decisions: list[str]) -> None:
    who = sorted(r for _, r in s.review.assignments(item_id=item))
    for reviewer, decision in zip(who, decisions, strict=False):
        t = s.construct.get_triplet(item)
        edits = {"answer": t.answer + "（改）"} if decision == "edit" else None
        service.decide(s, item, reviewer, decision, "" if decision in ("accept", "edit") else "不行",
                       s.review.triplet_version(item), POLICY, edits)


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("cal") / "review.sqlite"
    with Store(path) as s:
        for name in ("rev1", "rev2", "rev3"):
            add_user(s, name, PASSWORD, "reviewer")
        for i, (sc, ex, status, genre, _) in ITEMS.items():
            s.construct.put_triplet(Triplet(id=i, query=f"写{i}", thought="想" * 20, answer=f"文{i}",
                                            genre=genre, status=status, scores=ints(*sc),
                                            expected_scores=floats(*ex) if ex else None))
        service.assign_reviews(s, POLICY)
        for i, (*_, decisions) in ITEMS.items():
            decide_all(s, i, decisions)
    return path


def test_gate_against_the_majority(db):
    with Store(db) as s:
        rep = calibration_of_store(s)
    assert rep["units"] == 8 and rep["skipped"] == {"too_few_reviewers": 1, "unreviewed": 1}
    g = rep["gate"]
    assert (g["tp"], g["fp"], g["fn"], g["tn"]) == (3, 2, 1, 2)
    assert g["precision"] == 0.6 and g["recall"] == 0.75 and g["agreement"] == 0.625
    assert g["kappa"] == 0.25  # po 5/8, pe = 5/8 * 4/8 + 3/8 * 4/8 = 1/2
    assert g["precision_ci"] == pytest.approx([0.2307, 0.8824], abs=1e-4)  # Wilson, 3 of 5
    rows = {r["id"]: r for r in rep["items"]}
    assert sorted(rows["R1#0"]["decisions"].values()) == ["reject", "send_back"]
    assert rows["R1#0"]["gate_status"] == "accepted" and not rows["R1#0"]["human_accept"]
    assert rows["A4#0"]["gate_status"] == "needs_review" and rows["A4#0"]["human_accept"]


def test_rules_for_edits_and_ties(db):
    with Store(db) as s:
        strict = calibration_of_store(s, Rules(edits="reject"))
        skip = calibration_of_store(s, Rules(ties="skip"))
    g = strict["gate"]  # A2 becomes accept + reject: a tie, not accepted
    assert (g["tp"], g["fp"], g["fn"], g["tn"]) == (2, 3, 1, 2) and g["precision"] == 0.4
    g = skip["gate"]  # R4 left out
    assert skip["skipped"]["tie"] == 1 and skip["units"] == 7
    assert (g["tp"], g["fp"], g["fn"], g["tn"]) == (3, 2, 1, 1)
    assert g["agreement"] == round(4 / 7, 4) and g["kappa"] == round(2 / 23, 4)


def test_sweep_finds_the_planted_thresholds(db):
    with Store(db) as s:
        rep = calibration_of_store(s, target_precision=0.9)
    arg, exp = rep["sweeps"]["argmax"], rep["sweeps"]["expected"]
    assert arg["n"] == 8 and exp["n"] == 6  # A4 and R3 have no expected scores
    b = arg["best"]
    assert (b["min_each"], b["min_sum"], b["precision"], b["recall"], b["accepted"]) == (7, 45, 1.0, 1.0, 4)
    assert arg["frontier"][0] == b
    b = exp["best"]
    assert (b["min_each"], b["min_sum"], b["precision"], b["recall"]) == (6.5, 44, 1.0, 1.0)
    assert sum(r["precision"] == 1.0 and r["recall"] == 1.0 for r in arg["rows"]) == 1
    at = arg["at_configured"]  # the default gate (8, 50) takes A2 and A3 only
    assert (at["accepted"], at["precision"], at["recall"]) == (2, 1.0, 0.5)
    near = {(r["min_each"], r["min_sum"]): r for r in arg["rows"]}
    assert near[(6, 45)]["precision"] == 0.8 and near[(7, 44)]["precision"] == 0.8
    assert near[(7, 46)]["recall"] == 0.75
    assert calibrate([], {})["sweeps"]["argmax"] == {"n": 0, "best": None, "at_configured": None,
                                                      "frontier": [], "rows": []}


def test_refinement_rounds_are_units_of_their_own(tmp_path):
    """A round that ended in a send-back judged the triplet as sent back; the next round the
    refined version, with its own verdict and scores."""
    path = tmp_path / "r.sqlite"
    with Store(path) as s:
        for name in ("rev1", "rev2"):
            add_user(s, name, PASSWORD, "reviewer")
        s.construct.put_triplet(Triplet(id="X", query="写信", thought="想" * 20, answer="信",
                                        status="accepted", scores=ints(8, 52)))
        service.assign_reviews(s, POLICY)
        service.decide(s, "X", "rev1", "send_back", "推理太空泛", 0, POLICY)
        sent = s.construct.get_triplet("X")
        assert sent.status == "refining" and sent.pipeline_status == "accepted"
        ref = s.review.refinements("X")[0]
        new = Triplet.model_validate_json(ref["before"])
        new.thought, new.scores = "重新想" * 10, ints(6, 40)
        new.status = new.pipeline_status = "needs_review"
        s.review.finish_refinement(ref["id"], new, "model:m", "diff", "done", "", "m", [])
        for who in ("rev1", "rev2"):
            service.decide(s, "X", who, "reject", "仍然不行", 1, POLICY)
        units, skipped = read_units(s, Rules(min_reviewers=1))
        assert skipped == {}
        assert [(u.round, u.gate_status, u.human_accept, sum(u.scores.values())) for u in units] == \
            [(0, "accepted", False, 52), (1, "needs_review", False, 40)]
        assert read_units(s)[1] == {"too_few_reviewers": 1}


def test_cli_prints_json_and_plot(db, tmp_path):
    run = CliRunner().invoke
    r = run(app, ["review", "calibration", "--db", str(db)], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "8 reviewed items" in r.output and "1 too few reviewers; 1 unreviewed" in r.output
    assert "precision 0.60 [0.23, 0.88], recall 0.75" in r.output and "kappa 0.25" in r.output
    assert "min_each 7, min_sum 45: precision 1.00, recall 1.00 (4 accepted)" in r.output
    assert "min_each 6.5, min_sum 44: precision 1.00, recall 1.00" in r.output
    png = tmp_path / "cal.png"
    r = run(app, ["review", "calibration", "--db", str(db), "--json", "--plot", str(png),
                  "--ties", "skip"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    assert rep["schema"] == "coig-writer/review-calibration/1" and rep["rules"]["ties"] == "skip"
    assert rep["units"] == 7 and png.read_bytes()[:4] == b"\x89PNG"
    r = run(app, ["review", "calibration", "--db", str(db), "--edits", "maybe"])
    assert r.exit_code == 2 and "--edits is accept or reject" in r.output
    empty = tmp_path / "empty.sqlite"
    Store(empty).close()
    r = run(app, ["review", "calibration", "--db", str(empty)])
    assert r.exit_code == 2 and "reviewer decisions to calibrate against" in r.output
