"""Scorers (transformers on a tiny random model, vLLM / SGLang protocol on a loopback stub) and
the usefulness run: three conditions, resumable, gate with a named reason."""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from coig_writer.construct.usefulness import (
    UsefulnessConfig,
    choose_control,
    distribution,
    run_usefulness,
    windows,
)
from coig_writer.llm.scoring import (
    CachedScorer,
    OpenAICompletionsScorer,
    ScorerError,
    TransformersScorer,
    clipped_mean_nll,
    make_scorer,
)
from coig_writer.records import Triplet
from coig_writer.store import Store

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TransformersScorer:
    from coig_writer.train.tiny import build_tiny_model

    return TransformersScorer(build_tiny_model(tmp_path_factory.mktemp("tiny")), batch_size=2)


def test_transformers_scorer_equals_direct_torch(tiny: TransformersScorer) -> None:
    prefix = tiny.chat_prompt("写一首关于秋天的五言绝句。") + "<think>\n先定意象。\n</think>\n\n"
    text = "空山新雨后，天气晚来秋。"
    got = asyncio.run(tiny.token_logprobs(prefix, text))
    p_ids = tiny.tokenizer(prefix, add_special_tokens=False)["input_ids"]
    c_ids = tiny.tokenizer(text, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([p_ids + c_ids])
    with torch.no_grad():
        logp = torch.log_softmax(tiny.model(ids).logits[0].float(), dim=-1)
    direct = [logp[len(p_ids) + j - 1, c].item() for j, c in enumerate(c_ids)]
    assert len(got) == len(c_ids)
    assert got == pytest.approx(direct, abs=1e-4)
    assert clipped_mean_nll(got) == pytest.approx(clipped_mean_nll(direct), abs=1e-5)
    # a random model is unsure of everything: clipping must bite, the mean stays in [0, 2]
    assert 0 < clipped_mean_nll(got) <= 2.0
    # padded batch of unequal lengths gives the same numbers as one at a time
    pairs = [(prefix, text), ("短", "另一段更长一些的文字，用来检查右侧填充。")]
    batch = asyncio.run(tiny.batch_token_logprobs(pairs))
    assert batch[0] == pytest.approx(got, abs=1e-4)
    alone = asyncio.run(tiny.token_logprobs(*pairs[1]))
    assert batch[1] == pytest.approx(alone, abs=1e-4)


def test_clipped_mean_nll() -> None:
    assert clipped_mean_nll([-0.5, -5.0, 0.1]) == pytest.approx((0.5 + 2.0 + 0.0) / 3)


# -- server protocol -----------------------------------------------------------------------------
def _lp(pos: int, tok: int) -> float:
    """The stub's log-probability of token `tok` at position `pos`: distinct per position."""
    return -((tok % 89) / 10 + pos / 1000)


class LogprobStub:
    """Loopback vLLM / SGLang stand-in: /tokenize maps characters to code points; completions
    and /generate answer prompt log-probabilities by `_lp`. Records request bodies."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append((self.path, body))
                payload = outer.answer(self.path, body)
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def answer(self, path: str, body: dict[str, Any]) -> Any:
        if path == "/tokenize":
            return {"tokens": [ord(c) for c in body["prompt"]], "count": len(body["prompt"]),
                    "max_model_len": 4096}
        if path == "/v1/completions":
            choices = []
            for i, ids in enumerate(body["prompt"]):
                plp: list[Any] = [None]
                for pos, tok in enumerate(ids[1:], start=1):  # the true token and a top-1 rival
                    plp.append({str(tok): {"logprob": _lp(pos, tok), "rank": 2},
                                "7": {"logprob": -0.01, "rank": 1}})
                choices.append({"index": i, "text": "x", "prompt_logprobs": plp})
            return {"choices": choices[::-1]}  # out of order on purpose
        if path == "/generate":
            return [{"text": "x", "meta_info": {"input_token_logprobs": [
                [None if pos == 0 else _lp(pos, tok), tok, None] for pos, tok in enumerate(ids)]}}
                for ids in body["input_ids"]]
        raise AssertionError(path)

    def __enter__(self) -> LogprobStub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"


@pytest.mark.parametrize("api", ["vllm", "sglang"])
def test_server_scorer_reads_the_continuation_span(api: str) -> None:
    prefix, cont = "<|im_start|>user\n写诗<|im_end|>\n", "床前明月光"
    pairs = [(prefix, cont), ("ab", "xyz")]

    async def go(url: str) -> list[list[float]]:
        sc = OpenAICompletionsScorer(url, "stub-model", api=api, batch_size=2)  # type: ignore[arg-type]
        try:
            return await sc.batch_token_logprobs(pairs)
        finally:
            await sc.aclose()

    with LogprobStub() as stub:
        got = asyncio.run(go(stub.url))
    for (p, c), lps in zip(pairs, got, strict=True):
        assert lps == pytest.approx([_lp(len(p) + j, ord(ch)) for j, ch in enumerate(c)])
    gen = [b for path, b in stub.requests if path != "/tokenize"]
    assert len(gen) == 1  # one batched request
    if api == "vllm":
        assert gen[0]["prompt_logprobs"] == 1 and gen[0]["max_tokens"] == 1
        assert gen[0]["prompt"][0] == [ord(c) for c in prefix + cont]
    else:
        assert gen[0]["return_logprob"] is True and gen[0]["logprob_start_len"] == 0


def test_llamacpp_scorers_are_refused_with_alternatives() -> None:
    for kind in ("local", "xllamacpp", "llama.cpp"):
        with pytest.raises(ScorerError, match="no\\s+prompt-token log-probabilities") as e:
            make_scorer(kind, model="x")
        assert "vllm" in str(e.value) and "transformers" in str(e.value)


# -- usefulness ----------------------------------------------------------------------------------
def test_windows_cover_the_text_once() -> None:
    text = "第一句话。" * 30 + "最后没有句号"
    ws = windows(text, 40, 10)
    assert "".join(piece for _, piece in ws) == text
    assert all(len(p) <= 40 for _, p in ws) and len(ws) > 3
    assert ws[1][0] == text[len(ws[0][1]) - 10:len(ws[0][1])]


def _triplets() -> list[Triplet]:
    poems = ["慈母手中线，游子身上衣。", "独怜幽草涧边生，上有黄鹂深树鸣。", "移家虽带郭，野径入桑麻。"]
    return [Triplet(id=f"t{i}", query=f"写一首诗，题目{i}", thought=f"先想意象{i}，再定韵脚。",
                    answer=p, genre="poetry" if i < 2 else "essay", category="literary",
                    status="accepted") for i, p in enumerate(poems)]


def test_control_is_same_genre_and_deterministic() -> None:
    ts = _triplets()
    assert choose_control(ts[0], ts).id == "t1"
    assert choose_control(ts[2], ts).id in {"t0", "t1"}  # no other essay: same category
    assert choose_control(ts[2], ts) == choose_control(ts[2], list(reversed(ts)))


def test_usefulness_run_resumes_and_gates(tiny: TransformersScorer, tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        for t in _triplets():
            store.construct.put_triplet(t)
        cached = CachedScorer(tiny, store)
        cfg = UsefulnessConfig(window_chars=8, overlap_chars=3)
        s1 = asyncio.run(run_usefulness(store, cached, cfg))
        assert s1.scored == 3 and cached.misses == 3 * 3 * 2  # 3 conditions x 2 windows
        rec = store.usefulness.usefulness("t0")
        assert rec is not None and rec["control_id"] == "t1" and rec["windows"] == 2
        assert rec["gain"] == pytest.approx(rec["nll_prompt"] - rec["nll_own"])
        assert rec["gain_vs_control"] == pytest.approx(rec["nll_control"] - rec["nll_own"])
        assert rec["template_hash"] == tiny.template_hash and rec["version"] == 0
        # rerun: nothing scored again, nothing sent to the model
        fresh = CachedScorer(tiny, store)
        s2 = asyncio.run(run_usefulness(store, fresh, cfg))
        assert s2.scored == 0 and s2.skipped == 3 and fresh.misses == 0
        # --redo with the cache: recomputed from cached log-probabilities, same values
        s3 = asyncio.run(run_usefulness(store, fresh, cfg, redo=True))
        assert s3.scored == 3 and fresh.misses == 0
        assert store.usefulness.usefulness("t0")["nll_own"] == pytest.approx(rec["nll_own"])
        # gate: a threshold no item reaches sends every accepted item to review, reason named
        gate_cfg = cfg.model_copy(update={"min_usefulness_gain": 10.0})
        s4 = asyncio.run(run_usefulness(store, fresh, gate_cfg, gate=True))
        assert sorted(s4.gated) == ["t0", "t1", "t2"]
        t0 = store.construct.get_triplet("t0")
        assert t0.status == "needs_review"
        assert any(r.startswith("usefulness_gain=") and r.endswith("<10.0") for r in t0.reasons)
        dist = distribution(store.usefulness.usefulness_rows(), min_gain=10.0)
        assert [d["group"] for d in dist] == ["essay", "poetry", "all"]
        assert dist[-1]["count"] == 3 and dist[-1]["below_min"] == 1.0


def test_cli_scores_gates_and_prints_distribution(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from coig_writer.cli import app
    from coig_writer.train.tiny import build_tiny_model

    model = build_tiny_model(tmp_path / "tiny")
    db = tmp_path / "c.sqlite"
    runner = CliRunner()
    r = runner.invoke(app, ["construct", "usefulness", "--db", str(db), "--scorer", "local"])
    assert r.exit_code == 2 and "vllm" in r.output
    r = runner.invoke(app, ["data", "usefulness", "--db", str(db)])
    assert r.exit_code == 2 and "no usefulness scores" in r.output
    with Store(db) as store:
        for t in _triplets():
            store.construct.put_triplet(t)
    cfg = tmp_path / "construct.yaml"
    cfg.write_text("min_usefulness_gain: 5.0\nusefulness:\n  window_chars: 10\n")
    args = ["construct", "usefulness", "--db", str(db), "--scorer", "transformers", "--model",
            str(model), "--config", str(cfg)]
    r = runner.invoke(app, [*args, "--gate"])
    assert r.exit_code == 0, r.output
    assert "scored 3" in r.output and "gated to needs_review: 3" in r.output
    with Store(db) as store:
        assert store.usefulness.usefulness("t1")["windows"] == 2
        assert store.construct.count_triplets() == {"needs_review": 3}
    r = runner.invoke(app, [*args, "--status", "all"])  # resumed: nothing scored twice
    assert r.exit_code == 0 and "scored 0, already scored 3" in r.output
    r = runner.invoke(app, ["data", "usefulness", "--db", str(db), "--min-gain", "0.1"])
    assert r.exit_code == 0, r.output
    assert "poetry" in r.output and "all" in r.output


def test_prefix_is_cut_from_the_left_to_fit_the_context() -> None:
    from coig_writer.llm.scoring import _fit

    assert _fit(list(range(10)), [7, 8, 9], 8) == [5, 6, 7, 8, 9]
    assert _fit(list(range(4)), [7], None) == [0, 1, 2, 3]
    with pytest.raises(ScorerError, match="windows"):
        _fit([1, 2], [1] * 8, 8)


def test_usefulness_through_a_server_scorer_concurrently(tmp_path: Path) -> None:
    async def go(url: str, db: Path, concurrency: int) -> dict[str, dict[str, Any]]:
        with Store(db) as store:
            for t in _triplets():
                store.construct.put_triplet(t)
            sc = CachedScorer(OpenAICompletionsScorer(url, "stub-model", api="vllm"), store)
            try:
                s = await run_usefulness(store, sc, UsefulnessConfig(window_chars=8),
                                         concurrency=concurrency)
            finally:
                await sc.aclose()
            assert s.scored == 3
            return {r["triplet_id"]: r for r in store.usefulness.usefulness_rows()}

    with LogprobStub() as stub:
        one = asyncio.run(go(stub.url, tmp_path / "a.sqlite", 1))
        three = asyncio.run(go(stub.url, tmp_path / "b.sqlite", 3))
    for k, r in one.items():
        assert r["scorer"] == "stub-model" and r["windows"] == 2
        for f in ("nll_prompt", "nll_own", "nll_control", "gain", "gain_vs_control"):
            assert three[k][f] == pytest.approx(r[f])
    assert one["t0"]["gain"] != 0  # the stub's log-probabilities depend on the position
