"""One stage call for one item: render the stage's template, ask under the completion policy,
parse, read score distributions, record the stage result. Shared by the construction pipeline
and the gate; per-item logic only (scheduling is the executors', storage the store's)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..genres import load_taxonomy
from ..llm import (
    Backend,
    CachedBackend,
    ChatRequest,
    CompletionError,
    CompletionPolicy,
    complete_json,
    complete_text,
)
from ..llm.logprobs import score_distributions
from ..prompts import PromptTemplate, TemplateError, compose, load_template
from ..records import StageResult
from ..store import Store
from .config import ConstructConfig
from .stages import PREFIX_TEMPLATE, RETRY_TEMPLATES, STAGES, Stage, stage


@dataclass
class ItemContext:
    """What every stage call of one text reads: the item, the run, the text as the prompts show
    it, and what the screen found."""

    item_id: str
    run_id: str
    article: str
    title: str = ""
    author: str = ""
    genre: str | None = None
    genre_name: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def variables(self) -> dict[str, Any]:
        return {"article": self.article, "title": self.title, "genre_name": self.genre_name,
                "feedback": "", **self.extra}


class StageCaller:
    """Templates of one config, the cached backend, and `call(stage, ctx, round, **vars)`."""

    def __init__(self, store: Store, backend: Backend, config: ConstructConfig):
        self.store = store
        self.config = config
        self.llm = backend if isinstance(backend, CachedBackend) else CachedBackend(backend, store)
        cfg = config
        self.templates: dict[str, PromptTemplate] = {
            s.name: load_template(s.template(cfg.layout), cfg.lang, cfg.template_dir)
            for s in STAGES}
        if cfg.layout == "shared":
            self.templates[PREFIX_TEMPLATE] = load_template(
                cfg.template_name(PREFIX_TEMPLATE), cfg.lang, cfg.template_dir)
        self.templates |= {name: load_template(name, cfg.lang, cfg.template_dir)
                           for name in ("feedback", *RETRY_TEMPLATES)}
        self.genre_listing = load_taxonomy().listing(cfg.lang)

    def template(self, st: Stage) -> PromptTemplate:
        """The stage's template under this config (a stage outside `STAGES` is loaded on first
        use: a new stage is its object and its template)."""
        if st.name not in self.templates:
            cfg = self.config
            self.templates[st.name] = load_template(st.template(cfg.layout), cfg.lang,
                                                    cfg.template_dir)
            if st.retry and st.retry not in self.templates:
                self.templates[st.retry] = load_template(st.retry, cfg.lang, cfg.template_dir)
        return self.templates[st.name]

    @property
    def template_hashes(self) -> dict[str, str]:
        return {n: t.sha256 for n, t in self.templates.items()}

    def feedback(self, problems: list[str]) -> str:
        """The feedback block a round's problems become for the next round."""
        return self.templates["feedback"].render(
            issues="\n".join(f"- {p}" for p in problems))[-1]["content"]

    def messages(self, st: Stage, variables: dict[str, Any]) -> tuple[list[dict[str, str]],
                                                                       dict[str, str]]:
        """The stage's chat messages and the template hashes that enter the cache key."""
        tpl = self.template(st)
        variables = {"genres": self.genre_listing, **variables}
        missing = [v for v in st.reads if v not in variables]
        if missing:
            raise TemplateError(f"stage {st.name} reads {missing}, which the call lacks")
        tags = {st.name: tpl.sha256}
        prefix = self.templates.get(PREFIX_TEMPLATE)
        if prefix is not None:  # shared layout: the genre table is in the common system message
            tags[PREFIX_TEMPLATE] = prefix.sha256
            msgs = compose(prefix, tpl, **variables)
        else:
            msgs = tpl.render(**variables)
        if st.retry and st.is_json:  # JSON stages have always carried their retry's hash (any
            # retry's text is in that retry request's own messages, so nothing else needs it)
            tags[st.retry] = self.templates[st.retry].sha256
        return msgs, tags

    def request(self, st: Stage, ctx: ItemContext, rnd: int, variables: dict[str, Any]
                ) -> ChatRequest:
        cfg = self.config
        params = cfg.stages.get(st.name, st.sampling)
        msgs, tags = self.messages(st, variables)
        schema = st.schema if st.is_json and cfg.structured_output else None
        top = cfg.top_logprobs if st.scored else 0
        return ChatRequest.build(msgs, tags=tags, temperature=params.temperature,
                                 max_tokens=params.max_tokens, json_mode=st.is_json,
                                 seed=cfg.seed + (rnd if st.reseed else 0),
                                 json_schema=schema, top_logprobs=top,
                                 item=ctx.item_id, stage=st.name)

    async def call(self, st: Stage | str, ctx: ItemContext, rnd: int, **variables: Any
                   ) -> StageResult:
        """One stage for one item and round, under the completion policy: a truncated, looping
        or unusable answer is retried (JSON errors and non-prose reasoning with the error shown),
        then recorded as a failed stage with its reason."""
        st = stage(st) if isinstance(st, str) else st
        tpl = self.template(st)
        req = self.request(st, ctx, rnd, {**ctx.variables(), **variables})
        policy = CompletionPolicy(attempts=self.config.retries + 1,
                                  max_tokens_cap=self.config.stages.get(st.name,
                                                                        st.sampling).cap)
        result = StageResult(item_id=ctx.item_id, stage=st.name, round=rnd, template=tpl.ref,
                             template_hash=tpl.sha256, model=self.llm.model_id,
                             run_id=ctx.run_id)
        retry = self.templates[st.retry].user if st.retry else None
        try:
            if st.is_json:
                result.output, resps = await complete_json(self.llm, req, st.parse,
                                                           policy=policy, retry_message=retry)
            else:
                result.output, resps = await complete_text(self.llm, req, st.parse,
                                                           policy=policy, retry_message=retry)
        except CompletionError as e:
            resps = e.responses
            result.ok, result.error, result.error_kind = False, e.reason, e.kind
            self.llm.accounting.unusable(st.name, self.llm.model_id)
        else:
            if st.scored and req.top_logprobs:
                dists = score_distributions(resps[-1].logprobs, st.scored, *st.score_range)
                result.output["distributions"] = {k: d.as_dict() for k, d in dists.items()}
        result.cache_keys = [r.key or "" for r in resps]
        self.store.construct.put_stage(result)
        return result
