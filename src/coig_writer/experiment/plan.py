"""The experiment plan: one YAML file a person reads and edits, with the paper's and a smoke
preset. Relative paths in it are relative to the plan's folder, where everything is made."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

PLAN_FILE = "plan.yaml"
ENGINES = ("transformers", "vllm", "sglang", "llama.cpp")


class PlanError(ValueError):
    """The plan cannot be read or is inconsistent (the message names the file and field)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Creative(_Strict):
    """Where the creative triplets come from: a store's accepted ones (`store`), only those k
    human reviewers accepted (`reviewed`), or a released-format JSONL/Parquet `file`."""

    source: Literal["store", "reviewed", "file"] = "store"
    db: str | None = Field(None, description="store file for store/reviewed")
    file: str | None = Field(None, description="triplet file for source: file")


class Mixture(_Strict):
    """One model's training data, as `coig-writer mix build` takes it."""

    name: str
    creative: int | None = Field(None, description="creative samples (null: all)")
    general: int | None = None
    ratio: str | None = None
    lang_balance: dict[str, float] | None = None
    stratify_genre: bool = False
    seed: int = 0


class Training(_Strict):
    """`settings` go to the train config (TrainConfig fields: epochs, learning_rate, ...);
    `per_model` overrides them for one mixture; `launcher` is passed to `train run` as flags
    (e.g. nproc: 8, strategy: fsdp) when the trainer offers them."""

    settings: dict[str, Any] = Field(default_factory=dict)
    per_model: dict[str, dict[str, Any]] = Field(default_factory=dict)
    launcher: dict[str, Any] = Field(default_factory=dict)

    def for_model(self, name: str) -> dict[str, Any]:
        return {**self.settings, **self.per_model.get(name, {})}


class Generation(_Strict):
    """How each trained model answers the eval prompts: in-process transformers, or a managed
    vllm/sglang/llama.cpp server started for the model and stopped afterwards."""

    engine: Literal["transformers", "vllm", "sglang", "llama.cpp"] = "transformers"
    engine_args: list[str] = Field(default_factory=list)
    temperature: float = 0.7
    max_tokens: int = 2048
    max_tokens_cap: int | None = None
    seed: int = 0
    system: str | None = None
    concurrency: int = 8


class EvalSet(_Strict):
    """bundled-zh, bundled-en, writingbench, arena-hard-creative, or a prompt file."""

    source: str
    domain: str | None = None
    lang: str | None = None
    limit: int | None = Field(None, description="first N prompts (by id) only")


class Judge(_Strict):
    """The judge: `backend` local (embedded llama.cpp model) or openai (servers/endpoints);
    `modes`: pairwise (each model vs the reference, both orders) and optionally ranking."""

    backend: Literal["local", "openai"] = "openai"
    model: str | None = None
    base_url: list[str] = Field(default_factory=list)
    endpoints: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    name: str | None = None
    max_tokens: int = 300
    concurrency: int = 8
    modes: list[Literal["pairwise", "ranking"]] = Field(default_factory=lambda: ["pairwise"])
    reference: str = "G"
    prices: str | None = None
    max_failed: float = Field(0.0, ge=0, le=1, description="share of verdicts that may fail "
                              "(counted in status and the report) before the step fails")


class Report(_Strict):
    rounds: int = 1000
    seed: int = 0


class Plan(_Strict):
    name: str = "experiment"
    base_model: str
    reasoning: Literal["think", "drop"] = "think"
    creative: Creative = Field(default_factory=Creative)
    general_files: list[str] = Field(default_factory=list)
    mixtures: list[Mixture]
    training: Training = Field(default_factory=Training)
    generation: Generation = Field(default_factory=Generation)
    eval_sets: list[EvalSet]
    judge: Judge = Field(default_factory=Judge)
    report: Report = Field(default_factory=Report)
    executor: Literal["local", "ray"] = "local"
    ray_address: str | None = None
    ray_gpus_per_task: float = Field(0, description="GPUs Ray gives each training/generation "
                                     "task (Ray hides the others from it)")

    @field_validator("mixtures")
    @classmethod
    def _unique(cls, v: list[Mixture]) -> list[Mixture]:
        names = [m.name for m in v]
        if len(set(names)) != len(names) or not names:
            raise ValueError(f"mixture names must be unique and at least one, got {names}")
        return v

    def check(self) -> Plan:
        if self.judge.reference not in {m.name for m in self.mixtures}:
            raise PlanError(f"judge.reference {self.judge.reference!r} is not one of the "
                            f"mixtures {[m.name for m in self.mixtures]}")
        if self.creative.source == "file" and not self.creative.file:
            raise PlanError("creative.source is file but creative.file is not set")
        return self


def plan_path(path: str | Path) -> Path:
    p = Path(path)
    return p / PLAN_FILE if p.is_dir() else p


def load_plan(path: str | Path) -> tuple[Plan, Path]:
    """The plan and its folder; PlanError naming the file and the bad field."""
    p = plan_path(path)
    if not p.exists():
        raise PlanError(f"no plan at {p}; write one with `coig-writer experiment init`")
    try:
        data = yaml.safe_load(p.read_text("utf-8")) or {}
        plan = Plan.model_validate(data)
    except yaml.YAMLError as e:
        raise PlanError(f"{p}: not valid YAML: {e}") from None
    except ValidationError as e:
        where = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())
        raise PlanError(f"{p}: {where}") from None
    return plan.check(), p.parent.resolve()


HEADER = """\
# coig-writer experiment plan ({preset} preset). Edit freely, then `coig-writer experiment run {dir}`.
# Steps: each mixture -> its training -> its answers to the eval prompts; every model is judged
# against judge.reference in both orders; then the report (report/report.html, results.json).
# A rerun does only what changed: each step is recorded with the hash of its inputs.
# Relative paths are relative to this folder.
"""


def write_plan(plan: Plan, folder: Path, preset: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / PLAN_FILE
    body = yaml.safe_dump(plan.model_dump(mode="json", exclude_none=True), sort_keys=False,
                          allow_unicode=True, width=100)
    path.write_text(HEADER.format(preset=preset, dir=folder) + body, "utf-8")
    return path


def paper_preset(base_model: str = "Qwen/Qwen2.5-7B-Instruct") -> dict[str, Any]:
    """The paper: five Qwen2.5-7B-Instruct SFT models (CW, CW+2k, CW+10k, CW+20k, G), 3 epochs,
    lr 2e-5, global batch 32, judged against G on zh and en prompts."""
    from ..mix.builder import PRESETS

    mixtures = [{"name": s.name, "creative": s.creative, "general": s.general,
                 "lang_balance": s.lang_balance} for s in PRESETS.values()]
    return {"name": "coig-writer-paper", "base_model": base_model, "mixtures": mixtures,
            "training": {"settings": {"epochs": 3, "learning_rate": 2e-5, "global_batch": 32,
                                      "per_device_batch": 1, "max_length": 8192,
                                      "warmup_ratio": 0.1, "gradient_checkpointing": True},
                         "launcher": {}},
            "generation": {"engine": "vllm", "temperature": 0.7, "max_tokens": 4096,
                           "concurrency": 64},
            "eval_sets": [{"source": "bundled-zh"}, {"source": "bundled-en"},
                          {"source": "writingbench", "domain": "Literature & Arts"},
                          {"source": "arena-hard-creative"}],
            "judge": {"backend": "openai", "base_url": ["http://127.0.0.1:8000/v1"],
                      "model": "EDIT-ME-judge-model", "max_tokens": 1024, "concurrency": 32,
                      "modes": ["pairwise"], "reference": "G"},
            "report": {"rounds": 1000}}


def smoke_preset(base_model: str) -> dict[str, Any]:
    """Minutes on a 2-core CPU: the tiny random Qwen2, CW and G, 2 zh + 2 en bundled prompts,
    transformers generation with a few tokens, the embedded 0.5B model as judge."""
    return {"name": "smoke", "base_model": base_model,
            "mixtures": [{"name": "CW", "general": 0},
                         {"name": "G", "creative": 0, "general": 8,
                          "lang_balance": {"zh": 1, "en": 1}}],
            "training": {"settings": {"epochs": 1, "max_steps": 2, "learning_rate": 1e-4,
                                      "global_batch": 4, "per_device_batch": 4,
                                      "max_length": 256, "bf16": False, "logging_steps": 1,
                                      "save_steps": 1, "warmup_ratio": 0.0}},
            # sampled: a random tiny model's greedy answer is its last prompt token ("\n") again
            "generation": {"engine": "transformers", "temperature": 1.0, "max_tokens": 24,
                           "max_tokens_cap": 24, "concurrency": 4},
            "eval_sets": [{"source": "bundled-zh", "limit": 2},
                          {"source": "bundled-en", "limit": 2}],
            # the 0.5B judge sometimes loops in its reason on gibberish answers
            "judge": {"backend": "local", "model": "qwen2.5-coder-0.5b", "max_tokens": 200,
                      "concurrency": 2, "modes": ["pairwise"], "reference": "G",
                      "max_failed": 0.25},
            "report": {"rounds": 200}}
