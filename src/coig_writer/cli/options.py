"""Every option more than one command takes, declared once, and the specs built from them.

A command lists the options it takes as parameters typed with these aliases (its own default
after `=`), then builds its typed specs from its parameters with one helper per group:
`backend_spec(locals())` and `executor_spec(locals())` at the top of the command body read the
options by parameter name; an option the command does not take keeps the group's default.

Where one flag means different things in different commands (`--model` is the backend's model
in `construct run` and a checkpoint folder in `train run`), each meaning is its own alias here,
so that no command declares a flag of this module again (tests/test_architecture.py checks).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from ..executors.spec import ExecutorSpec
    from ..llm import BackendSpec

# --- backend: which LLM answers, and how long to wait for it (one help panel) -----------------
BACKEND, EXECUTOR = "Backend", "Executor"
BackendOpt = Annotated[str, typer.Option(
    "--backend", rich_help_panel=BACKEND,
    help="local (an embedded model or a .gguf, run here by llama.cpp), openai (any "
         "OpenAI-compatible server) or transformers (a checkpoint folder, run here, batched).")]
ModelOpt = Annotated[str | None, typer.Option(
    "--model", rich_help_panel=BACKEND,
    help="local: an embedded model name or a .gguf path (default qwen2.5-coder-1.5b); openai: "
         "the server's model name; transformers: a checkpoint folder.")]
BaseUrlOpt = Annotated[list[str] | None, typer.Option(
    "--base-url", rich_help_panel=BACKEND,
    help="OpenAI-compatible server URL, e.g. http://127.0.0.1:8000/v1; repeat for several.")]
EndpointsOpt = Annotated[Path | None, typer.Option(
    "--endpoints", rich_help_panel=BACKEND,
    help="YAML list of endpoints (url, model, api_key_env, max_concurrency, weight, rpm, tpm; "
         "see docs/scaling.md).")]
ApiKeyEnvOpt = Annotated[str, typer.Option(
    "--api-key-env", rich_help_panel=BACKEND, help="Name of the env var with the key.")]
NCtxOpt = Annotated[int, typer.Option(
    "--n-ctx", rich_help_panel=BACKEND, help="Context window of the embedded llama.cpp model.")]
PromptCacheOpt = Annotated[bool, typer.Option(
    "--prompt-cache/--no-prompt-cache", rich_help_panel=BACKEND,
    help="Keep the embedded engine's prompt cache on (off only to measure what it saves).")]
TimeoutOpt = Annotated[float, typer.Option(
    "--timeout", rich_help_panel=BACKEND,
    help="Seconds one server call may take, answer included (raise it for long generations on "
         "slow servers).")]
MaxFailuresOpt = Annotated[int, typer.Option(
    "--max-failures", rich_help_panel=BACKEND,
    help="Give up (exit 1, items left pending) when every endpoint has failed this many "
         "attempts in a row; 0: never.")]
GiveUpAfterOpt = Annotated[float, typer.Option(
    "--give-up-after", rich_help_panel=BACKEND,
    help="Give up when every endpoint has been failing this many seconds without a success; "
         "0: never.")]
PricesOpt = Annotated[Path | None, typer.Option(
    "--prices", rich_help_panel=BACKEND,
    help="YAML model -> {input, output} USD per million tokens, for the cost column.")]
LogCallsOpt = Annotated[bool, typer.Option(
    "--log-calls/--no-log-calls", rich_help_panel=BACKEND,
    help="Print one line per LLM answer (stage, item, tokens, tokens/s).")]

# --- executor: where the items run, how many at once (one help panel) -------------------------
ConcurrencyOpt = Annotated[int, typer.Option(
    "--concurrency", rich_help_panel=EXECUTOR,
    help="Items in flight (per worker with --executor ray).")]
ExecutorOpt = Annotated[str | None, typer.Option(
    "--executor", rich_help_panel=EXECUTOR,
    help="local (on this machine) or ray (on Ray: the cluster at --ray-address, else a local "
         "instance).")]
RayAddressOpt = Annotated[str | None, typer.Option(
    "--ray-address", rich_help_panel=EXECUTOR,
    help="Ray cluster address (e.g. auto); default: start a local Ray instance.")]
WorkersOpt = Annotated[int, typer.Option("--workers", rich_help_panel=EXECUTOR,
                                         help="Ray: shards processed at once.")]
ShardSizeOpt = Annotated[int, typer.Option("--shard-size", rich_help_panel=EXECUTOR,
                                           help="Ray: items per shard.")]
BatchOutOpt = Annotated[Path | None, typer.Option(
    "--batch-out", rich_help_panel=EXECUTOR,
    help="Write the next wave of requests as an OpenAI Batch API file into this folder.")]
BatchInOpt = Annotated[Path | None, typer.Option(
    "--batch-in", rich_help_panel=EXECUTOR, help="Load a Batch API output file first.")]

# --- store, output, what to work on -----------------------------------------------------------
DbOpt = Annotated[Path, typer.Option("--db", help="SQLite store file.", envvar="COIG_WRITER_DB")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the summary as one JSON document "
                                                      "on stdout (for scripts).")]
ConfigOpt = Annotated[Path | None, typer.Option(
    "--config", help="Construct config YAML (ConstructConfig fields; its `search:` and "
                     "`usefulness:` sections too).")]
LimitOpt = Annotated[int | None, typer.Option("--limit", help="Work on at most this many "
                                                              "pending items.")]
RedoOpt = Annotated[bool, typer.Option("--redo/--no-redo",
                                       help="Process again what is already done.")]
StatusOpt = Annotated[str, typer.Option(
    "--status", help="Triplets of this status: accepted, needs_review, rejected or all.")]
ReviewedOpt = Annotated[bool, typer.Option(
    "--reviewed/--no-reviewed", help="Only triplets that k human reviewers accepted (with the "
                                     "policy the review app last ran with).")]
TripletFileOpt = Annotated[Path | None, typer.Option(
    "--file", help="A triplet file instead of the store.")]
TripletsOpt = Annotated[Path | None, typer.Option(
    "--triplets", help="Creative triplet file instead of the store's accepted triplets.")]
GeneralFilesOpt = Annotated[list[Path], typer.Option(
    "--general-file", help="General dataset (.jsonl/.json/.parquet; chat or prompt/response). "
                           "Repeat for several.")]
OutDirOpt = Annotated[Path, typer.Option("--out", help="Output folder.")]
OutFileOpt = Annotated[Path | None, typer.Option(
    "--out", help="Write the rows (triplets, or flags) to this .jsonl file.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed.")]
PortOpt = Annotated[int, typer.Option("--port", help="Port to listen on.")]
GroupByOpt = Annotated[str, typer.Option("--by", help="Group by category or genre.")]
NoDecontamOpt = Annotated[bool, typer.Option("--no-decontam-check",
                                             help="Skip the n-gram contamination check.")]
DecontamSetsOpt = Annotated[list[str] | None, typer.Option(
    "--decontam-set", help="Eval sets the contamination check uses: bundled-zh, bundled-en, "
                           "writingbench, arena-hard-creative, store, or a prompt file; repeat "
                           "(default: the four named sets).")]
ExcludeOpt = Annotated[bool, typer.Option(
    "--exclude-contaminated", help="Drop items sharing an n-gram with an eval prompt.")]
ReasoningOpt = Annotated[str, typer.Option(
    "--reasoning", help="think: the reasoning in the <think> slot; drop: left out (ablation).")]

# --- language ---------------------------------------------------------------------------------
LangOpt = Annotated[str | None, typer.Option(
    "--lang", help="Language of the prompt templates: zh or en (default zh).")]
LangFilterOpt = Annotated[str | None, typer.Option("--lang", help="Only zh or en prompts.")]
NamesLangOpt = Annotated[str, typer.Option("--lang", help="Names in zh or en.")]

# --- evaluation -------------------------------------------------------------------------------
PromptSetOpt = Annotated[str | None, typer.Option("--set", help="Only this prompt set.")]
MaxTokensOpt = Annotated[int, typer.Option(
    "--max-tokens", help="Most tokens one answer (or verdict) may have.")]
JudgeModeOpt = Annotated[str, typer.Option(
    "--mode", help="pairwise (both orders, five-level verdicts), ranking (K-way) or rubric "
                   "(1-10 per criterion, WritingBench).")]
JudgesOpt = Annotated[list[str] | None, typer.Option(
    "--judge", help="A judge of an ensemble (repeatable; each judges every task): MODEL, "
                    "NAME=MODEL, MODEL@URL or NAME=MODEL@URL. Without @URL the judge uses "
                    "--base-url/--endpoints. An --endpoints file whose entries name different "
                    "models makes one judge per model.")]
JudgeNameOpt = Annotated[str | None, typer.Option(
    "--judge-name", help="The judge's name, recorded with its verdicts (default: its model); "
                         "eval estimate and eval report take only its verdicts.")]
AnswersNameOpt = Annotated[str, typer.Option(
    "--name", help="Name of the model whose answers these are, in reports (e.g. CW+20k).")]
ModelsOpt = Annotated[list[str] | None, typer.Option("--model",
                                                     help="Models to include (repeat).")]
ModelNameOpt = Annotated[str, typer.Option(
    "--model", help="Model name, for the price table and the labels only (nothing is called).")]

# --- usefulness and search --------------------------------------------------------------------
ScorerOpt = Annotated[str | None, typer.Option(
    "--scorer", help="Usefulness scorer: transformers (in-process), vllm or sglang.")]
ScorerModelOpt = Annotated[str | None, typer.Option(
    "--model", help="Scorer model: a folder, .gguf or embedded name (transformers, e.g. "
                    "qwen2.5-coder-0.5b), or the served model name (vllm, sglang).")]
ScorerUrlOpt = Annotated[str | None, typer.Option(
    "--base-url", help="vllm/sglang scorer server, e.g. http://127.0.0.1:8000/v1")]
ScorerTokenizerOpt = Annotated[str | None, typer.Option(
    "--tokenizer", help="vllm/sglang: local tokenizer folder (default: the server's "
                        "/tokenize).")]
ScorerFilterOpt = Annotated[str | None, typer.Option("--scorer",
                                                     help="Only this scorer model.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="transformers scorer: cpu or cuda.")]
MinGainOpt = Annotated[float | None, typer.Option(
    "--min-gain", help="Least usefulness gain a triplet should have: construct usefulness gates "
                       "on it (overriding min_usefulness_gain), data usefulness shows the share "
                       "below it.")]
SearchStepsOpt = Annotated[int | None, typer.Option("--max-steps",
                                                    help="Steps per triplet (REER: 10).")]

# --- mixtures, training, plans, serving -------------------------------------------------------
DatasetNameOpt = Annotated[str | None, typer.Option(
    "--name", help="Name of the dataset: the card's title (data publish) or the mixture's (mix "
                   "build; default: the preset or 'mixture').")]
MixPresetOpt = Annotated[str | None, typer.Option(
    "--preset", help="CW, CW+2k, CW+10k, CW+20k or G (the paper's).")]
PlanPresetOpt = Annotated[str, typer.Option(
    "--preset", help="paper (five 7B models, GPUs, a judge endpoint) or smoke (tiny model, CPU, "
                     "minutes).")]
CheckTokenizerOpt = Annotated[Path | None, typer.Option(
    "--tokenizer", help="Check the chat template and loss mask with this tokenizer and print a "
                        "sample.")]
PlanDbOpt = Annotated[Path | None, typer.Option("--db", help="Store with the triplets.")]
TrainConfigOpt = Annotated[Path | None, typer.Option(
    "--config", help="YAML TrainConfig (e.g. the mix's train.yaml).")]
TrainModelOpt = Annotated[str | None, typer.Option("--model", help="Model folder (overrides the "
                                                                   "config).")]
TrainStepsOpt = Annotated[int | None, typer.Option("--max-steps", help="Optimizer steps "
                                                                       "(overrides the config).")]
TrainWorkersOpt = Annotated[int | None, typer.Option(
    "--workers", rich_help_panel=EXECUTOR, help="Ray Train workers (default: the cluster's GPUs).")]
ServeModelOpt = Annotated[str | None, typer.Option(
    "--model", help="Checkpoint folder (vllm, sglang) or .gguf file (llama.cpp); default: the "
                    "embedded model NAME.")]

BACKEND_DEFAULTS: dict[str, Any] = {
    "backend": "local", "model": None, "base_url": None, "endpoints": None,
    "api_key_env": "OPENAI_API_KEY", "concurrency": 4, "n_ctx": 8192, "prompt_cache": True,
    "batch_out": None, "batch_in": None}
EXECUTOR_DEFAULTS: dict[str, Any] = {
    "executor": "local", "concurrency": 4, "workers": 2, "shard_size": 32, "ray_address": None,
    "batch_out": None, "batch_in": None}


def _values(opts: Mapping[str, Any], defaults: dict[str, Any], fixed: dict[str, Any]
            ) -> dict[str, Any]:
    return {k: fixed.get(k, opts.get(k, d)) for k, d in defaults.items()}


def backend_spec(opts: Mapping[str, Any], **fixed: Any) -> BackendSpec:
    """The `BackendSpec` of a command's backend options (`opts`: its parameters by name;
    `fixed`: values that replace them). Exits 2 with the reason on values no backend takes.
    Batch runs need no server; --timeout and the give-up options become the failure policy."""
    from ..llm import BackendSpec
    from .common import fail

    o = _values(opts, BACKEND_DEFAULTS, fixed)
    batch = o["batch_out"] is not None or o["batch_in"] is not None
    if batch and o["backend"] != "openai":
        raise fail("batch files need --backend openai and --model (the model the batch runs)")
    model, urls, endpoints = o["model"], o["base_url"] or [], o["endpoints"]
    if o["backend"] == "transformers" and model:  # Ray workers may start in another folder
        model = str(Path(model).resolve())
    if batch and not urls and not endpoints:
        urls = ["http://batch.invalid/v1"]  # never contacted: requests go to files
    policy = None
    if "timeout" in opts or "timeout" in fixed:
        policy = policy_of(fixed.get("timeout", opts.get("timeout")),
                           fixed.get("max_failures", opts.get("max_failures", 10)),
                           fixed.get("give_up_after", opts.get("give_up_after", 300.0)))
    return BackendSpec(kind=o["backend"], model=model, base_url=urls,
                       endpoints=str(Path(endpoints).resolve()) if endpoints else None,
                       api_key_env=o["api_key_env"], concurrency=o["concurrency"],
                       n_ctx=o["n_ctx"], policy=policy, prompt_cache=o["prompt_cache"])


def policy_of(timeout: float, max_failures: int, give_up_after: float) -> dict[str, float]:
    """The `FailurePolicy` fields --timeout, --max-failures and --give-up-after name."""
    from .common import fail

    if timeout <= 0 or max_failures < 0 or give_up_after < 0:
        raise fail("--timeout must be > 0; --max-failures and --give-up-after >= 0")
    return {"timeout_s": timeout, "give_up_failures": max_failures,
            "give_up_after_s": give_up_after}


def executor_spec(opts: Mapping[str, Any], **fixed: Any) -> ExecutorSpec:
    """The `ExecutorSpec` of a command's executor, concurrency and batch options."""
    from ..executors.spec import ExecutorSpec
    from .common import fail

    o = _values(opts, EXECUTOR_DEFAULTS, fixed)
    if o["executor"] not in ("local", "ray"):
        raise fail(f"--executor must be local or ray, got {o['executor']!r}")
    return ExecutorSpec(kind=o["executor"], concurrency=o["concurrency"], workers=o["workers"],
                        shard_size=o["shard_size"], address=o["ray_address"],
                        batch_out=o["batch_out"], batch_in=o["batch_in"])
