"""Scorers: log-probabilities of a continuation's tokens given a prefix (for perplexity measures).

One small interface, `LogprobScorer`, with three implementations:

- `TransformersScorer`: in-process, one forward pass, `log_softmax`, `gather` over the
  continuation tokens (how lm-evaluation-harness computes log-likelihoods). Loads a model
  folder or a `.gguf` file (dequantized by transformers through `gguf`).
- `OpenAICompletionsScorer(api="vllm")`: vLLM's `/v1/completions` with `prompt_logprobs: 1`,
  `max_tokens: 1`; the answer is `choices[i].prompt_logprobs` (entry 0 is null, then one dict
  per prompt token keyed by token id).
- `OpenAICompletionsScorer(api="sglang")`: SGLang's native `/generate` with
  `return_logprob: true, logprob_start_len: 0`; the answer is `meta_info.input_token_logprobs`
  (`[logprob, token_id, text]` per token, the first logprob null).

Token span. Prefix and continuation are tokenized separately (no special tokens) and the ids
concatenated, the lm-evaluation-harness convention; the ids, not the text, are sent to the
server, so the continuation is exactly the last `len(continuation_ids)` positions and no merge
of tokens across the boundary can shift it. Tokenization comes from a local Hugging Face
tokenizer (`tokenizer=PATH`) or the server's `/tokenize` endpoint. When prefix + continuation
exceed the context, the prefix is cut from the left (as lm-evaluation-harness does); callers
that must keep the whole prefix score long continuations in windows (see
`construct.usefulness`).

llama.cpp's server, xllamacpp and the embedded engine return no prompt log-probabilities:
`make_scorer` refuses them and names the alternatives. `CachedScorer` keeps every answer in the
store's request cache, so a rerun sends nothing twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import httpx

from .base import LLMError

NO_PROMPT_LOGPROBS = ("local", "llama.cpp", "llamacpp", "llama-cpp", "xllamacpp", "embedded",
                      "openai")
SCORERS = ("transformers", "vllm", "sglang")

# ChatML, the format of the Qwen family, used when a scorer knows no chat template of its own.
CHATML_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


class ScorerError(LLMError):
    """A scorer cannot be built or cannot answer."""


@runtime_checkable
class LogprobScorer(Protocol):
    """Per-token log-probabilities of `continuation` given `prefix`."""

    model_id: str

    async def token_logprobs(self, prefix: str, continuation: str) -> list[float]: ...

    async def batch_token_logprobs(self, pairs: Sequence[tuple[str, str]]) -> list[list[float]]: ...

    def chat_prompt(self, user: str) -> str:
        """`user` as one user turn in the scorer's chat template, generation prompt added."""
        ...

    @property
    def template_hash(self) -> str: ...

    async def aclose(self) -> None: ...


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def render_chat(template: str, user: str) -> str:
    import jinja2

    env = jinja2.Environment(keep_trailing_newline=True)
    return env.from_string(template).render(messages=[{"role": "user", "content": user}],
                                            add_generation_prompt=True)


def _fit(prefix_ids: list[int], cont_ids: list[int], max_len: int | None) -> list[int]:
    """Prefix ids cut from the left so that prefix + continuation fit `max_len` (at least one
    prefix token is kept: the first continuation token needs a position before it)."""
    if not cont_ids:
        raise ScorerError("empty continuation: nothing to score")
    if max_len is not None:
        if len(cont_ids) + 1 > max_len:
            raise ScorerError(f"continuation of {len(cont_ids)} tokens does not fit the context "
                              f"of {max_len}; score it in windows")
        prefix_ids = prefix_ids[max(0, len(prefix_ids) + len(cont_ids) - max_len):]
    if not prefix_ids:
        raise ScorerError("empty prefix: the first continuation token has no context")
    return prefix_ids


# -- in-process transformers --------------------------------------------------------------------
class TransformersScorer:
    """A causal LM in this process (CPU or GPU): one forward pass per sequence."""

    def __init__(self, model: str | Path, *, device: str = "cpu", batch_size: int = 4,
                 max_len: int | None = None, name: str | None = None):
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as e:  # pragma: no cover - depends on the install
            raise ScorerError("the transformers scorer needs torch and transformers "
                              "(pip install 'coig-writer[train]' gguf)") from e
        path = Path(model)
        if path.suffix == ".gguf":
            if not path.exists():
                raise ScorerError(f"no such model file: {path}")
            kw: dict[str, Any] = {"gguf_file": path.name}
            src = str(path.parent)
        else:
            kw, src = {}, str(model)
        self.tokenizer = AutoTokenizer.from_pretrained(src, **kw)
        self.model = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32, **kw)
        self.model.to(device).eval()
        self.device = device
        self.batch_size = batch_size
        self.max_len = max_len or getattr(self.model.config, "max_position_embeddings", None)
        self.model_id = name or (path.name if path.suffix == ".gguf" else str(model))
        self.template = self.tokenizer.chat_template or CHATML_TEMPLATE
        self._lock = asyncio.Lock()
        import inspect

        self._keep = "logits_to_keep" in inspect.signature(self.model.forward).parameters

    def chat_prompt(self, user: str) -> str:
        if self.tokenizer.chat_template:
            return self.tokenizer.apply_chat_template([{"role": "user", "content": user}],
                                                      tokenize=False, add_generation_prompt=True)
        return render_chat(CHATML_TEMPLATE, user)

    @property
    def template_hash(self) -> str:
        return _sha(self.template)

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _score_ids(self, seqs: list[tuple[list[int], list[int]]]) -> list[list[float]]:
        """Right-padded batch: log_softmax at the positions before each continuation token,
        gathered at that token."""
        import torch

        full = [p + c for p, c in seqs]
        width = max(len(s) for s in full)
        pad = self.tokenizer.pad_token_id or 0
        ids = torch.full((len(full), width), pad, dtype=torch.long)
        mask = torch.zeros((len(full), width), dtype=torch.long)
        for i, s in enumerate(full):
            ids[i, :len(s)] = torch.tensor(s)
            mask[i, :len(s)] = 1
        # logits only from the first position that predicts a continuation token on: the
        # vocabulary projection of the prefix positions is never needed
        first = min(len(p) for p, _ in seqs) - 1
        kw = {"logits_to_keep": width - first} if self._keep else {}
        if not self._keep:
            first = 0
        with torch.no_grad():
            logits = self.model(input_ids=ids.to(self.device),
                                attention_mask=mask.to(self.device), **kw).logits
        out = []
        for i, (p, c) in enumerate(seqs):
            rows = logits[i, len(p) - 1 - first:len(p) + len(c) - 1 - first].float()
            lp = torch.log_softmax(rows, dim=-1)
            target = torch.tensor(c, device=lp.device)[:, None]
            out.append(lp.gather(-1, target)[:, 0].tolist())
        return out

    def score_sync(self, pairs: Sequence[tuple[str, str]]) -> list[list[float]]:
        seqs = []
        for prefix, cont in pairs:
            c = self.encode(cont)
            seqs.append((_fit(self.encode(prefix), c, self.max_len), c))
        out: list[list[float]] = []
        for i in range(0, len(seqs), self.batch_size):
            out.extend(self._score_ids(seqs[i:i + self.batch_size]))
        return out

    async def batch_token_logprobs(self, pairs: Sequence[tuple[str, str]]) -> list[list[float]]:
        async with self._lock:  # one forward pass at a time; it uses every core anyway
            return await asyncio.to_thread(self.score_sync, list(pairs))

    async def token_logprobs(self, prefix: str, continuation: str) -> list[float]:
        return (await self.batch_token_logprobs([(prefix, continuation)]))[0]

    async def aclose(self) -> None:
        return None


# -- servers: vLLM completions, SGLang /generate ------------------------------------------------
class OpenAICompletionsScorer:
    """Prompt-token log-probabilities from a vLLM (`api="vllm"`) or SGLang (`api="sglang"`)
    server. `base_url` is the OpenAI base (e.g. http://host:8000/v1) or the server root."""

    def __init__(self, base_url: str, model: str, *, api: Literal["vllm", "sglang"] = "vllm",
                 tokenizer: str | Path | None = None, chat_template: str | None = None,
                 api_key: str | None = None, timeout_s: float = 600.0, batch_size: int = 8,
                 max_len: int | None = None):
        if api not in ("vllm", "sglang"):
            raise ScorerError(f"api must be vllm or sglang, got {api!r}")
        self.api = api
        self.model_id = model
        self.root = base_url.rstrip("/").removesuffix("/v1")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.AsyncClient(timeout=timeout_s, headers=headers)
        self.batch_size = batch_size
        self.max_len = max_len
        self.hf_tokenizer = None
        if tokenizer is not None:
            from transformers import AutoTokenizer

            self.hf_tokenizer = AutoTokenizer.from_pretrained(str(tokenizer))
        self.template = (chat_template
                         or (self.hf_tokenizer.chat_template if self.hf_tokenizer else None)
                         or CHATML_TEMPLATE)

    def chat_prompt(self, user: str) -> str:
        return render_chat(self.template, user)

    @property
    def template_hash(self) -> str:
        return _sha(self.template)

    async def _post(self, path: str, body: dict[str, Any]) -> Any:
        try:
            r = await self.http.post(self.root + path, json=body)
        except httpx.HTTPError as e:
            raise ScorerError(f"{self.root}{path}: {e}") from e
        if r.status_code != 200:
            raise ScorerError(f"{self.root}{path}: HTTP {r.status_code}: {r.text[:300]}")
        return r.json()

    async def encode(self, text: str) -> list[int]:
        if self.hf_tokenizer is not None:
            return list(self.hf_tokenizer(text, add_special_tokens=False)["input_ids"])
        data = await self._post("/tokenize", {"model": self.model_id, "prompt": text,
                                              "add_special_tokens": False})
        if self.max_len is None and data.get("max_model_len"):
            self.max_len = int(data["max_model_len"])
        if "tokens" not in data:
            raise ScorerError(f"{self.root}/tokenize answered without `tokens`; pass a local "
                              "tokenizer (--tokenizer PATH)")
        return [int(t) for t in data["tokens"]]

    async def _request(self, seqs: list[list[int]]) -> list[list[float | None]]:
        """Log-probability of every prompt token (None for the first), one list per sequence."""
        if self.api == "vllm":
            data = await self._post("/v1/completions", {
                "model": self.model_id, "prompt": seqs, "max_tokens": 1, "temperature": 0,
                "prompt_logprobs": 1})
            choices = sorted(data["choices"], key=lambda c: c.get("index", 0))
            if len(choices) != len(seqs):
                raise ScorerError(f"sent {len(seqs)} prompts, got {len(choices)} choices")
            out = []
            for ids, ch in zip(seqs, choices, strict=True):
                plp = ch.get("prompt_logprobs")
                if not plp:
                    raise ScorerError("the server returned no prompt_logprobs: is it vLLM? "
                                      "(llama.cpp servers do not return them)")
                out.append([None if e is None else _pick(e, tok) for e, tok in zip(plp, ids,
                                                                                   strict=True)])
            return out
        data = await self._post("/generate", {
            "input_ids": seqs, "return_logprob": True, "logprob_start_len": 0,
            "sampling_params": {"max_new_tokens": 1, "temperature": 0}})
        items = data if isinstance(data, list) else [data]
        out = []
        for ids, item in zip(seqs, items, strict=True):
            entries = item["meta_info"]["input_token_logprobs"]
            if len(entries) != len(ids):
                raise ScorerError(f"sent {len(ids)} tokens, got {len(entries)} logprobs")
            out.append([None if e[0] is None else float(e[0]) for e in entries])
        return out

    async def batch_token_logprobs(self, pairs: Sequence[tuple[str, str]]) -> list[list[float]]:
        seqs, spans = [], []
        for prefix, cont in pairs:
            c = await self.encode(cont)
            p = _fit(await self.encode(prefix), c, self.max_len)
            seqs.append(p + c)
            spans.append(len(c))
        out: list[list[float]] = []
        for i in range(0, len(seqs), self.batch_size):
            got = await self._request(seqs[i:i + self.batch_size])
            for lps, n in zip(got, spans[i:i + self.batch_size], strict=True):
                tail = lps[len(lps) - n:]
                if any(v is None for v in tail):
                    raise ScorerError("a continuation token has no log-probability")
                out.append([float(v) for v in tail])  # type: ignore[arg-type]
        return out

    async def token_logprobs(self, prefix: str, continuation: str) -> list[float]:
        return (await self.batch_token_logprobs([(prefix, continuation)]))[0]

    async def aclose(self) -> None:
        await self.http.aclose()


def _pick(entry: dict[str, Any], token: int) -> float:
    """vLLM's per-position dict holds the prompt token and the top-k; take the prompt token."""
    e = entry.get(str(token), entry.get(token))  # type: ignore[call-overload]
    if e is None:
        raise ScorerError(f"prompt token {token} missing from its prompt_logprobs entry")
    return float(e["logprob"] if isinstance(e, dict) else e)


# -- cache --------------------------------------------------------------------------------------
class CachedScorer:
    """Looks every (prefix, continuation) up in the store's request cache before scoring it."""

    def __init__(self, scorer: LogprobScorer, store: Any):
        self.scorer = scorer
        self.store = store
        self.model_id = scorer.model_id
        self.hits = 0
        self.misses = 0

    def chat_prompt(self, user: str) -> str:
        return self.scorer.chat_prompt(user)

    @property
    def template_hash(self) -> str:
        return self.scorer.template_hash

    def _request(self, prefix: str, cont: str) -> dict[str, Any]:
        return {"kind": "token_logprobs", "scorer": self.model_id, "prefix": prefix,
                "continuation": cont, "template_hash": self.template_hash}

    @staticmethod
    def key(request: dict[str, Any]) -> str:
        return "logprobs:" + _sha(json.dumps(request, ensure_ascii=False, sort_keys=True))

    async def batch_token_logprobs(self, pairs: Sequence[tuple[str, str]]) -> list[list[float]]:
        reqs = [self._request(p, c) for p, c in pairs]
        out: list[list[float] | None] = []
        for r in reqs:
            hit = self.store.cache.cache_get(self.key(r))
            out.append(json.loads(hit["text"]) if hit else None)
        todo = [i for i, v in enumerate(out) if v is None]
        self.hits += len(pairs) - len(todo)
        if todo:
            t0 = time.perf_counter()
            got = await self.scorer.batch_token_logprobs([pairs[i] for i in todo])
            each = (time.perf_counter() - t0) / len(todo)
            for i, lps in zip(todo, got, strict=True):
                self.store.cache.cache_put(self.key(reqs[i]), self.model_id, reqs[i], json.dumps(lps),
                                     {"tokens": len(lps)}, each)
                out[i] = lps
            self.misses += len(todo)
        return [v for v in out if v is not None]

    async def token_logprobs(self, prefix: str, continuation: str) -> list[float]:
        return (await self.batch_token_logprobs([(prefix, continuation)]))[0]

    async def aclose(self) -> None:
        await self.scorer.aclose()


def clipped_mean_nll(logprobs: Sequence[float], clip_min: float = -2.0) -> float:
    """REER's measure: each token log-probability clipped to [clip_min, 0], averaged, negated."""
    if not logprobs:
        return math.nan
    return -sum(min(0.0, max(clip_min, v)) for v in logprobs) / len(logprobs)


def make_scorer(kind: str, *, model: str | None = None, base_url: str | None = None,
                tokenizer: str | None = None, api_key: str | None = None, device: str = "cpu",
                batch_size: int = 4, chat_template: str | None = None) -> LogprobScorer:
    """`transformers` (model: folder, .gguf path or an embedded model name), `vllm` or
    `sglang` (a server at base_url serving `model`). `chat_template` (Jinja text) overrides
    the server scorer's template (default: the local tokenizer's, else ChatML)."""
    if kind in NO_PROMPT_LOGPROBS:
        raise ScorerError(
            f"scorer {kind!r}: llama.cpp's server, xllamacpp and the embedded engine return no "
            "prompt-token log-probabilities. Use --scorer transformers --model PATH (in-process, "
            "a model folder or .gguf), or a server that does: --scorer vllm (/v1/completions "
            "with prompt_logprobs) or --scorer sglang (/generate with return_logprob) with "
            "--base-url and --model.")
    if kind == "transformers":
        if not model:
            raise ScorerError("the transformers scorer needs --model (a folder, a .gguf file or "
                              "an embedded model name such as qwen2.5-coder-0.5b)")
        from .models import MODELS, ensure_model

        if model in MODELS:
            return TransformersScorer(ensure_model(model), name=model, device=device,
                                      batch_size=batch_size)
        if not Path(model).exists():
            raise ScorerError(f"--model {model!r}: no such folder or file")
        return TransformersScorer(model, device=device, batch_size=batch_size)
    if kind in ("vllm", "sglang"):
        if not base_url or not model:
            raise ScorerError(f"the {kind} scorer needs --base-url and --model")
        return OpenAICompletionsScorer(base_url, model, api=kind,  # type: ignore[arg-type]
                                       tokenizer=tokenizer, api_key=api_key,
                                       batch_size=batch_size, chat_template=chat_template)
    raise ScorerError(f"unknown scorer {kind!r}; choose one of {', '.join(SCORERS)}")
