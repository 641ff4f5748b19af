"""Probability-weighted scores (G-Eval): the distribution of a score from its tokens' top
logprobs, digit-split numbers ("10" as "1" "0"), the gate under `score_rule: expected` against
`argmax`, and a server that returns no logprobs (the integers stand in, and the reasons say so).
A stub serves fixed logprobs: no small model gives chosen probabilities on demand."""

from __future__ import annotations

import asyncio
import json
import math
import re

import pytest

from coig_writer.construct.config import ConstructConfig
from coig_writer.construct.pipeline import ConstructPipeline
from coig_writer.construct.runner import run_local
from coig_writer.llm.base import compact_logprobs
from coig_writer.llm.logprobs import score_distribution
from coig_writer.llm.openai_compat import OpenAICompatBackend
from coig_writer.records import SCORE_DIMENSIONS, SourceText
from coig_writer.store import Store

from .review_fixtures import GOLD_TEXT, stage_answer
from .servers import _Server, completion, stage_of

TEXT = GOLD_TEXT


def qwen_tokens(text: str) -> list[str]:
    """The answer cut as Qwen's tokenizer cuts numbers: every digit its own token."""
    return [t for t in re.split(r"(\d)", text) if t]


def logprobs_for(text: str, alts: dict[int, dict[str, float]]) -> dict:
    """An OpenAI-style `choices[0].logprobs` for `text`; `alts[i]` gives the probabilities of
    the alternatives at the i-th digit token (the written digit included)."""
    content, digit = [], 0
    for tok in qwen_tokens(text):
        top = [{"token": tok, "logprob": 0.0}]
        if tok.isdigit():
            probs = alts.get(digit, {tok: 1.0})
            top = [{"token": t, "logprob": math.log(p)} for t, p in probs.items()]
            digit += 1
        lp = next((a["logprob"] for a in top if a["token"] == tok), -5.0)
        content.append({"token": tok, "logprob": lp, "bytes": list(tok.encode()),
                        "top_logprobs": top})
    return {"content": content}


def test_expected_value_and_mass_of_a_written_score():
    text = '{"quality": 8, "creativity": 7}'
    lp = compact_logprobs(logprobs_for(text, {0: {"8": 0.5, "7": 0.3, "9": 0.15, '"': 0.05}}))
    d = score_distribution(lp, "quality")
    assert d.value == 8 and d.expected == pytest.approx((4 + 2.1 + 1.35) / 0.95)
    assert d.mass == pytest.approx(0.95)
    assert score_distribution(lp, "creativity").expected == 7.0  # a sure 7
    assert score_distribution(lp, "missing") is None and score_distribution(None, "quality") is None


def test_ten_written_as_one_then_zero_reads_the_second_token():
    text = '{"text_quality": 10, "x": 1}'
    lp = compact_logprobs(logprobs_for(text, {0: {"1": 0.6, "9": 0.4}, 1: {"0": 0.75}}))
    # the "0" position: 0.75 on "0", the rest on non-digits (the number ends at 1)
    lp[qwen_tokens(text).index("0")]["top"].append([",", math.log(0.25)])
    d = score_distribution(lp, "text_quality")
    assert d.value == 10 and d.ambiguous == 0
    assert dict(d.probs) == pytest.approx({1: 0.15, 9: 0.4, 10: 0.45})
    assert d.expected == pytest.approx(0.15 + 3.6 + 4.5)


def test_a_one_that_cannot_be_split_goes_to_the_nearer_of_1_and_10():
    text = '{"quality": 9}'
    lp = compact_logprobs(logprobs_for(text, {0: {"9": 0.7, "1": 0.2, "8": 0.1}}))
    d = score_distribution(lp, "quality")
    assert d.ambiguous == pytest.approx(0.2) and dict(d.probs)[10] == pytest.approx(0.2)
    low = compact_logprobs(logprobs_for('{"quality": 2}', {0: {"2": 0.7, "1": 0.3}}))
    assert dict(score_distribution(low, "quality").probs)[1] == pytest.approx(0.3)


class ScoringStub(_Server):
    """Every construction stage answered as `review_fixtures.stage_answer` does (all scores 9),
    the score stage with fixed probabilities: each dimension's "9" has probability `p9`, the rest
    on "5" (an unsure judge whose integers pass); `logprobs=False` serves none at all."""

    def __init__(self, p9: float = 0.3, logprobs: bool = True):
        self.p9, self.with_logprobs = p9, logprobs
        super().__init__(self._answer)

    def _answer(self, body):
        stage = stage_of(body)
        text = stage_answer(body)
        out = completion(text)
        if stage in ("score", "screen") and self.with_logprobs:
            assert body["logprobs"] is True and body["top_logprobs"] == 10
            n = len(re.findall(r"\d", text))
            alts = {i: {"9": self.p9, "5": 1 - self.p9} for i in range(n)}
            if stage == "screen":  # screen: sure 8s
                alts = {i: {"8": 1.0} for i in range(n)}
            out["choices"][0]["logprobs"] = logprobs_for(text, alts)
        return 200, out, 0.0


def _construct(tmp_path, stub: ScoringStub, **cfg) -> list:
    path = tmp_path / f"s{len(list(tmp_path.glob('*.sqlite')))}.sqlite"
    with stub, Store(path) as store:
        store.corpus.add_source(SourceText(id="t1", text=TEXT))
        pipe = ConstructPipeline(store, OpenAICompatBackend(stub.base_url, "stub"),
                                 ConstructConfig(max_rounds=0, **cfg))
        asyncio.run(run_local(pipe))
        return list(store.construct.iter_triplets())


def test_an_unsure_judge_passes_argmax_but_not_expected_scores(tmp_path):
    [argmax] = _construct(tmp_path, ScoringStub(p9=0.3), score_rule="argmax")
    assert argmax.status == "accepted" and argmax.scores.total == 54
    assert argmax.expected_scores["text_quality"] == pytest.approx(0.3 * 9 + 0.7 * 5)
    [expected] = _construct(tmp_path, ScoringStub(p9=0.3), score_rule="expected")
    assert expected.status != "accepted" and expected.score_rule == "expected"
    assert any(r.startswith("low expected scores: prompt_quality=6.20<8") for r in expected.reasons)
    assert expected.score_mass == {d: pytest.approx(1.0) for d in SCORE_DIMENSIONS}
    assert expected.screen["distributions"]["quality"]["expected"] == 8.0
    [sure] = _construct(tmp_path, ScoringStub(p9=0.95), score_rule="expected")
    assert sure.status == "accepted"  # 0.95 * 9 + 0.05 * 5 = 8.8 in each dimension


def test_without_logprobs_the_integers_stand_in_and_the_verdict_says_so(tmp_path):
    [t] = _construct(tmp_path, ScoringStub(logprobs=False), score_rule="expected")
    assert t.expected_scores is None and t.score_mass is None
    assert t.score_rule == "argmax" and t.status == "accepted"  # nothing else to compare
    [low] = _construct(tmp_path, ScoringStub(logprobs=False), score_rule="expected",
                       min_each=10)
    assert any("the server returned no score probabilities: integer scores were compared" in r
               for r in low.reasons)


def test_no_logprobs_asked_for_with_top_logprobs_zero(tmp_path):
    stub = ScoringStub(logprobs=False)
    _construct(tmp_path, stub, top_logprobs=0)
    assert not any("logprobs" in json.dumps(b) for b in stub.requests)
