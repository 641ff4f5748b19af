"""An in-process transformers chat backend for a trained checkpoint (CPU or a small GPU).

Requests that arrive together (the executors keep several in flight) are gathered into one
batch: left padding, the checkpoint's own chat template, greedy (`temperature` 0) or sampled.
One `generate` runs at a time, in a worker thread, so the event loop stays free meanwhile.
JSON mode and schemas are not enforced here (no constrained decoding): use it for answers.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .base import ChatRequest, ChatResponse, LLMError, split_thinking

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt")


def checkpoint_fingerprint(path: Path, sample: int = 1 << 20) -> str:
    """A content hash of a checkpoint folder: config, tokenizer files, and each weight file's
    size with its first and last MiB, so a retrained model never reuses the old cache keys."""
    h = hashlib.sha256()
    for f in sorted(p for p in path.iterdir() if p.is_file()):
        h.update(f.name.encode())
        size = f.stat().st_size
        h.update(str(size).encode())
        with f.open("rb") as fh:
            if f.suffix in WEIGHT_SUFFIXES and size > 2 * sample:
                h.update(fh.read(sample))
                fh.seek(size - sample)
            h.update(fh.read())
    return h.hexdigest()


@dataclass
class _Pending:
    request: ChatRequest
    future: asyncio.Future[ChatResponse]
    enqueued: float = field(default_factory=time.monotonic)


class TransformersBackend:
    """A checkpoint folder (e.g. `models/CW/final`) answering chat requests in batches."""

    def __init__(self, model_dir: str | Path, *, name: str | None = None, max_batch: int = 8,
                 device: str | None = None, dtype: str | None = None, gather_s: float = 0.02):
        self.path = Path(model_dir)
        if not (self.path / "config.json").exists():
            raise LLMError(f"--model must be a transformers checkpoint folder with config.json, "
                           f"got {str(model_dir)!r}")
        self.name = name or self.path.name
        self.model_id = f"transformers:{self.name}:{checkpoint_fingerprint(self.path)[:16]}"
        self.max_batch = max(1, max_batch)
        self.gather_s = gather_s
        self._device, self._dtype = device, dtype
        self._model: Any = None
        self._tok: Any = None
        self._queue: list[_Pending] = []
        self._runner: asyncio.Task[None] | None = None
        self._lock = threading.Lock()  # one generate at a time, whatever loop or thread asks
        self.batches: list[int] = []  # sizes of the batches run (for tests and logs)

    # -- loading --------------------------------------------------------------------------
    def load(self) -> tuple[Any, Any]:
        if self._model is None:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            device = self._device or ("cuda" if torch.cuda.is_available() else "cpu")
            dtype = getattr(torch, self._dtype) if self._dtype else (
                torch.bfloat16 if device.startswith("cuda") else torch.float32)
            tok = AutoTokenizer.from_pretrained(self.path, padding_side="left")
            if tok.pad_token is None:
                tok.pad_token = tok.eos_token
            model = AutoModelForCausalLM.from_pretrained(self.path, dtype=dtype).to(device)
            model.eval()
            self._tok, self._model = tok, model
        return self._model, self._tok

    def stop_ids(self) -> list[int]:
        model, tok = self.load()
        ids = model.generation_config.eos_token_id
        out = list(ids) if isinstance(ids, (list, tuple)) else ([ids] if ids is not None else [])
        for t in (tok.eos_token, "<|im_end|>", "<|endoftext|>"):
            i = tok.convert_tokens_to_ids(t) if t else None
            if isinstance(i, int) and i != tok.unk_token_id and i not in out:
                out.append(i)
        return out

    def encode(self, request: ChatRequest) -> list[int]:
        """The prompt token ids: the checkpoint's chat template with the generation prompt."""
        _, tok = self.load()
        text = tok.apply_chat_template(request.message_dicts, tokenize=False,
                                       add_generation_prompt=True)
        return tok(text, add_special_tokens=False)["input_ids"]

    # -- batching -------------------------------------------------------------------------
    async def chat(self, request: ChatRequest) -> ChatResponse:
        fut: asyncio.Future[ChatResponse] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(request, fut))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._drain())
        return await fut

    async def _drain(self) -> None:
        while self._queue:
            await asyncio.sleep(self.gather_s)  # let concurrent requests join the batch
            head = self._queue[0].request
            params = (head.temperature, head.max_tokens, head.seed)
            batch = [p for p in self._queue
                     if (p.request.temperature, p.request.max_tokens, p.request.seed)
                     == params][: self.max_batch]
            for p in batch:
                self._queue.remove(p)
            try:
                answers = await asyncio.to_thread(self.generate, [p.request for p in batch])
            except Exception as e:  # noqa: BLE001 - every waiting request gets the reason
                for p in batch:
                    if not p.future.done():
                        p.future.set_exception(LLMError(f"{self.model_id}: {e}"))
                continue
            for p, a in zip(batch, answers, strict=True):
                if not p.future.done():
                    p.future.set_result(a)

    def generate(self, requests: list[ChatRequest]) -> list[ChatResponse]:
        """Generate for requests sharing temperature, max_tokens and seed (one batch)."""
        with self._lock:
            return self._generate(requests)

    def _generate(self, requests: list[ChatRequest]) -> list[ChatResponse]:
        import torch

        model, tok = self.load()
        t0 = time.monotonic()
        prompts = [self.encode(r) for r in requests]
        width = max(len(p) for p in prompts)
        pad = tok.pad_token_id
        ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
        head = requests[0]
        kw: dict[str, Any] = {"max_new_tokens": head.max_tokens, "pad_token_id": pad,
                              "eos_token_id": self.stop_ids()}
        if head.temperature > 0:
            torch.manual_seed(head.seed or 0)
            kw.update(do_sample=True, temperature=head.temperature, top_p=1.0, top_k=0)
        else:
            kw.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        with torch.inference_mode():
            out = model.generate(input_ids=ids.to(model.device),
                                 attention_mask=mask.to(model.device), **kw)
        self.batches.append(len(requests))
        latency = time.monotonic() - t0
        return [self.decode(row[width:].tolist(), len(p), head.max_tokens, latency)
                for row, p in zip(out, prompts, strict=True)]

    def decode(self, new_ids: list[int], prompt_tokens: int, max_tokens: int,
               latency_s: float = 0.0) -> ChatResponse:
        """One answer from its generated token ids: cut at the first stop token, thinking
        split off, finish reason `stop` or `length` (max_tokens reached without a stop)."""
        _, tok = self.load()
        stops = set(self.stop_ids())
        n, stopped = len(new_ids), False
        for i, t in enumerate(new_ids):
            if t in stops:
                n, stopped = i, True
                break
        text = tok.decode(new_ids[:n], skip_special_tokens=False)
        for special in (tok.pad_token, tok.eos_token):
            if special:
                text = text.replace(special, "")
        thinking, answer = split_thinking(text)
        used = n + (1 if stopped else 0)
        return ChatResponse(text=answer, thinking=thinking,
                            finish_reason="stop" if stopped or used < max_tokens else "length",
                            usage={"prompt_tokens": prompt_tokens, "completion_tokens": used,
                                   "total_tokens": prompt_tokens + used},
                            latency_s=latency_s, endpoint=f"transformers:{self.path}")

    async def aclose(self) -> None:
        if self._runner is not None and not self._runner.done():
            await self._runner
        self._model = None
        self._tok = None
