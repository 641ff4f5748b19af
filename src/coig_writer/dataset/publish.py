"""A publishable dataset folder: Parquet shards plus a README dataset card built from the store.

`datasets.load_dataset(DIR)` loads the folder (the card's `configs` names the shards). Rows hold
the released COIG-Writer fields `{id, query, thought, answer}` plus category, genre, status,
review status, scores, usefulness, source URL, date and licence.
"""

from __future__ import annotations

import json
import re
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..langid import detect_language
from ..records import SCORE_DIMENSIONS, Triplet
from ..store import Store
from .decontaminate import DEFAULT_SETS, DecontaminationReport, decontaminate, triplet_items
from .stats import group_stats

USEFULNESS_FIELDS = ("nll_prompt", "nll_own", "nll_control", "gain", "gain_vs_control")
SIZE_BUCKETS = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M"))
_SPDX = re.compile(r"^[a-z0-9][a-z0-9.\-+]*$")


def _schema():
    import pyarrow as pa

    return pa.schema([
        ("id", pa.string()), ("query", pa.string()), ("thought", pa.string()),
        ("answer", pa.string()), ("category", pa.string()), ("genre", pa.string()),
        ("status", pa.string()), ("review_status", pa.string()),
        ("scores", pa.struct([(d, pa.int32()) for d in SCORE_DIMENSIONS])),
        ("score_sum", pa.int32()),
        ("usefulness", pa.struct([(f, pa.float64()) for f in USEFULNESS_FIELDS])),
        ("source_url", pa.string()), ("date", pa.string()), ("license", pa.string())])


@dataclass
class PublishOptions:
    status: str | None = "accepted"
    reviewed: bool = False
    shard_rows: int = 10_000
    license: str | None = None
    name: str = "COIG-Writer-style creative writing with reasoning"
    policy_k: int | None = None  # None: the policy the review app saved (default k=2)
    decontam_sets: tuple[str, ...] = DEFAULT_SETS  # () skips the contamination check
    exclude_contaminated: bool = False


@dataclass
class PublishReport:
    rows: int
    shards: list[str]
    card: str
    counts: dict[str, int] = field(default_factory=dict)
    decontamination: DecontaminationReport | None = None


def _license_of(store: Store, t: Triplet) -> tuple[str | None, str | None, str | None]:
    prov = t.provenance
    if not (prov.license or prov.source_url) and t.source_id:
        src = store.corpus.get_source(t.source_id)
        if src is not None:
            prov = src.provenance
    return prov.source_url, prov.date.isoformat() if prov.date else None, prov.license


def _row(store: Store, t: Triplet, review_status: str) -> dict[str, Any]:
    url, date, lic = _license_of(store, t)
    u = store.usefulness.usefulness(t.id)
    return {"id": t.id, "query": t.query, "thought": t.thought, "answer": t.answer,
            "category": t.category, "genre": t.genre, "status": t.status,
            "review_status": review_status,
            "scores": t.scores.model_dump() if t.scores else None,
            "score_sum": t.scores.total if t.scores else None,
            "usefulness": {f: u.get(f) for f in USEFULNESS_FIELDS} if u else None,
            "source_url": url, "date": date, "license": lic}


def select(store: Store, opts: PublishOptions) -> list[tuple[Triplet, str]]:
    """(triplet, review status) pairs to publish: of `opts.status`, and with `reviewed` only
    those the reviewers accepted under the review policy."""
    from ..review.service import statuses

    by_id = statuses(store, _policy(store, opts))
    out = []
    for t in store.construct.iter_triplets(opts.status):
        rs = by_id[t.id][1]
        if opts.reviewed and rs != "accepted":
            continue
        out.append((t, rs))
    return out


def _policy(store: Store, opts: PublishOptions):
    """The review app's saved policy, or k reviewers when `policy_k` is given."""
    from ..review.service import ReviewPolicy, load_policy

    return ReviewPolicy(k=opts.policy_k) if opts.policy_k else load_policy(store)


def publish(store: Store, out: Path, opts: PublishOptions | None = None) -> PublishReport:
    """Write `out/data/train-XXXXX-of-YYYYY.parquet` and `out/README.md`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    opts = opts or PublishOptions()
    chosen = select(store, opts)
    if not chosen:
        raise ValueError("nothing to publish: no triplet matches the filters "
                         f"(status={opts.status or 'all'}, reviewed={opts.reviewed})")
    decon = None
    if opts.decontam_sets:
        decon = decontaminate(triplet_items(t for t, _ in chosen), opts.decontam_sets, store=store,
                              download=opts.decontam_sets != DEFAULT_SETS)
        if opts.exclude_contaminated:
            chosen = [(t, rs) for t, rs in chosen if t.id not in decon.contaminated]
            if not chosen:
                raise ValueError("nothing to publish: every selected triplet is contaminated")
    rows = [_row(store, t, rs) for t, rs in chosen]
    data = out / "data"
    data.mkdir(parents=True, exist_ok=True)
    for old in data.glob("train-*.parquet"):
        old.unlink()
    n_shards = (len(rows) + opts.shard_rows - 1) // opts.shard_rows
    shards = []
    for i in range(n_shards):
        name = f"train-{i:05d}-of-{n_shards:05d}.parquet"
        part = rows[i * opts.shard_rows:(i + 1) * opts.shard_rows]
        tmp = data / (name + ".tmp")
        pq.write_table(pa.Table.from_pylist(part, schema=_schema()), tmp)
        tmp.replace(data / name)
        shards.append(f"data/{name}")
    card = dataset_card(store, [t for t, _ in chosen], [rs for _, rs in chosen], rows, opts,
                        decon)
    (out / "README.md").write_text(card, encoding="utf-8")
    return PublishReport(len(rows), shards, str(out / "README.md"),
                         dict(Counter(t.category or "(unknown)" for t, _ in chosen)), decon)


# -- the card -----------------------------------------------------------------------------------
def size_category(n: int) -> str:
    return next((name for limit, name in SIZE_BUCKETS if n < limit), "n>10M")


def _metadata(triplets: Sequence[Triplet], rows: Sequence[dict[str, Any]],
              opts: PublishOptions) -> dict[str, Any]:
    langs = sorted({lang for t in triplets if (lang := detect_language(t.answer))})
    lics = {r["license"] for r in rows if r["license"]}
    lic = opts.license or (next(iter(lics)).lower() if len(lics) == 1
                           and _SPDX.match(next(iter(lics)).lower()) else "other")
    meta: dict[str, Any] = {
        "pretty_name": opts.name, "license": lic, "language": langs or ["zh"],
        "task_categories": ["text-generation"],
        "tags": ["creative-writing", "reasoning", "process-supervision", "coig-writer"],
        "size_categories": [size_category(len(rows))],
        "configs": [{"config_name": "default",
                     "data_files": [{"split": "train", "path": "data/train-*.parquet"}]}]}
    if lic == "other":
        meta["license_name"] = (next(iter(lics)) if len(lics) == 1
                                else "mixed, per row (see the `license` column)")
    return meta


def _names(by: str) -> dict[str, str]:
    from ..genres import load_taxonomy

    tax = load_taxonomy()
    items = tax.categories if by == "category" else tax.genres
    return {x.key: f"{x.en} / {x.zh}" for x in items}


def _check_counts(triplets: Sequence[Triplet]) -> list[list[Any]]:
    from ..construct.checks import CHECKS, DECISION_KINDS, CheckInput, decision_kinds, run_checks

    flagged: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    others = tuple(t.answer[:2000] for t in triplets[:64])
    for t in triplets:
        inp = CheckInput(t.query, t.thought, t.answer, genre=t.genre, others=others)
        flagged.update(r.name for r in run_checks(inp) if not r.passed)
        kinds.update(k for k, v in decision_kinds(t.thought).items() if v)
    return ([[f"fails: `{c.name}`" + (" (review)" if c.severity == "review" else ""),
              flagged[c.name]] for c in CHECKS.values()]
            + [[f"shows: {k}", kinds[k]] for k in DECISION_KINDS])


def _table(header: Sequence[str], body: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in body]
    return "\n".join(lines)


def _fmt(v: float | None, nd: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{nd}f}"


def _latest_run_config(store: Store) -> dict[str, Any] | None:
    runs = [r for r in store.runs.runs() if r["kind"] == "construct"]
    return store.runs.run_config(runs[-1]["id"]) if runs else None


def dataset_card(store: Store, triplets: Sequence[Triplet], review: Sequence[str],
                 rows: Sequence[dict[str, Any]], opts: PublishOptions,
                 decon: DecontaminationReport | None = None) -> str:
    """README.md: YAML metadata, then counts, lengths, thresholds and the gate's health, models,
    review, provenance, filters, usefulness, checks and limitations, all computed from the
    store."""
    urows = [r for r in store.usefulness.usefulness_rows()
             if r["triplet_id"] in {t.id for t in triplets}]
    parts = ["---", yaml.safe_dump(_metadata(triplets, rows, opts), allow_unicode=True,
                                   sort_keys=False).strip(), "---", "", f"# {opts.name}", ""]
    parts += _intro(store, triplets, opts)
    parts += _counts_section(triplets)
    parts += _construction_section(store, triplets, urows)
    parts += _review_section(store, review, opts)
    parts += _provenance_section(store, rows)
    parts += ["## Decontamination against evaluation prompts", "", _decontam_text(decon, opts),
              ""]
    parts += _usefulness_section(urows)
    parts += _checks_section(triplets)
    parts += LIMITATIONS
    return "\n".join(parts)


LIMITATIONS = [
    "## Known limitations", "",
    "- Prompts and reasoning are reverse-engineered by an LLM from existing texts; "
    "the reasoning describes a plausible process, not the author's.",
    "- LLM scores come from one judge model and can be lenient; the usefulness "
    "measure depends on the scorer model and its chat template (hashes above).",
    "- Texts keep their original licences (see the `license` column); check them "
    "before redistribution or training.",
    "- Genre labels come from the screening model and may be wrong for mixed forms.",
    ""]


def _intro(store: Store, triplets: Sequence[Triplet], opts: PublishOptions) -> list[str]:
    built = _latest_run_config(store) is not None
    return [
        f"{len(triplets)} (prompt, reasoning, text) triplets in the COIG-Writer format (`id`, "
        "`query`, `thought`, `answer`)"
        + (", built with coig-writer: texts were screened, a prompt was reverse-engineered for "
           "each, then a reasoning process that plans the text; LLM-free checks, LLM "
           "validation and six-dimension scores decided acceptance. " if built else
           ", assembled with coig-writer from imported triplets (no construction run is "
           "recorded in the store). ")
        + f"Selection: status `{opts.status or 'all'}`"
        + (", accepted by human review" if opts.reviewed else "") + ".",
        "", "```python", "from datasets import load_dataset",
        'ds = load_dataset("path/to/this/folder")["train"]', "```", ""]


def _counts_section(triplets: Sequence[Triplet]) -> list[str]:
    n = len(triplets)
    parts = ["## Counts per category and genre", ""]
    for by in ("category", "genre"):
        counts = Counter(getattr(t, by) or "(unknown)" for t in triplets)
        names = _names(by)
        parts += [_table([by, "name", "count", "share"],
                         [[f"`{k}`", names.get(k, ""), c, f"{c / n:.1%}"]
                          for k, c in sorted(counts.items(), key=lambda kc: (-kc[1], kc[0]))]
                         + [["Total", "", n, "100%"]]), ""]
    parts += ["## Length statistics (characters)", "",
              "Min / mean / max characters of prompt, reasoning and text per category, as in "
              "the paper's table.", ""]
    groups, total = group_stats(triplets, by="category", lang="en")
    parts += [_table(["category", "count", "prompt", "reasoning", "text"],
                     [[g.name, g.count, *(f"{s.min:,} / {s.mean:,.0f} / {s.max:,}"
                                          for s in g.lengths.values())]
                      for g in [*groups, total]]), ""]
    return parts


def _construction_section(store: Store, triplets: Sequence[Triplet],
                          urows: list[dict[str, Any]]) -> list[str]:
    parts = ["## Construction: thresholds, templates, models", ""]
    cfg = _latest_run_config(store)
    if cfg:
        c = cfg.get("config", {})
        keys = ("lang", "screen_threshold", "min_each", "min_sum", "reject_below", "max_rounds",
                "score_rule", "top_logprobs")
        parts += [_table(["setting", "value"], [[k, c.get(k)] for k in keys if k in c]), ""]
    else:
        parts += ["No construction run is recorded in the store (triplets were imported).", ""]
    parts += _gate_health(triplets)
    hashes: Counter[tuple[str, str]] = Counter()
    for t in triplets:
        hashes.update(t.templates.items())
    if hashes:
        parts += [_table(["template", "sha256", "triplets"],
                         [[k, f"`{h[:16]}`", c] for (k, h), c in sorted(hashes.items())]), ""]
    models = Counter(t.model or "(unknown)" for t in triplets)
    parts += ["Annotator (construction) models: "
              + ", ".join(f"`{m}` ({c})" for m, c in models.most_common()) + "."]
    scorers = Counter((r["scorer"], r["template_hash"][:12]) for r in urows)
    parts += ["Usefulness scorer models: "
              + (", ".join(f"`{s}` with chat template `{h}` ({c})" for (s, h), c in
                           scorers.items()) if scorers else "none")
              + ".", ""]
    scored = [t.scores.total for t in triplets if t.scores]
    if scored:
        parts += [f"Six-dimension score sums of {len(scored)} scored triplets: min "
                  f"{min(scored)}, median {statistics.median(scored)}, max {max(scored)}.", ""]
    return parts


def _gate_health(triplets: Sequence[Triplet]) -> list[str]:
    """Which scores the thresholds compared, and whether each score dimension carried
    information (construct.health), with its warnings."""
    from ..construct.health import health_lines, health_row, score_health

    rules = Counter(t.score_rule or "not recorded" for t in triplets if t.scores)
    if not rules:
        return []
    h = score_health([health_row(t.scores.model_dump(), t.expected_scores, t.score_confidence)
                      for t in triplets if t.scores])
    parts = ["### The gate's health", "",
             "Score rule (what the thresholds compared: `argmax` the integers the judge wrote, "
             "`expected` their expected value over the score tokens' probabilities): "
             + ", ".join(f"`{r}` ({c})" for r, c in rules.most_common()) + ".", "", "```"]
    parts += health_lines(h) + ["```", ""]
    parts += [f"- **Warning:** {w}" for w in h["warnings"]] + ([""] if h["warnings"] else [])
    return parts


def _review_section(store: Store, review: Sequence[str], opts: PublishOptions) -> list[str]:
    from ..review.service import acceptance_counts, agreement_stats

    parts = ["## Review", ""]
    rs = Counter(review)
    policy = _policy(store, opts)
    special = ", ".join(f"{g}: {k}" for g, k in (policy.per_genre or {}).items())
    parts += [f"Review policy: each item needs {policy.k} assigned reviewers"
              + (f" ({special} for specialist genres)" if special else "")
              + f"; after a refinement it returns to {policy.rereview} reviewers. An item is "
              "accepted when every counted reviewer accepts or edits it, rejected when all "
              "reject, disputed otherwise.", "",
              _table(["review status (published items)", "items"], sorted(rs.items())), ""]
    acc_counts = acceptance_counts(store, policy)
    parts += [f"Pipeline vs human review over the whole store: pipeline accepted "
              f"{acc_counts.get('pipeline_accepted', 0)}, reviewers accepted "
              f"{acc_counts.get('human_accepted', 0)}, both {acc_counts.get('both_accepted', 0)}."]
    status = Counter(t.status for t in store.construct.iter_triplets(None))
    acc = status.get("accepted", 0) / sum(status.values()) if status else 0.0
    parts += [f"Pipeline acceptance over the whole store: {status.get('accepted', 0)} of "
              f"{sum(status.values())} triplets accepted ({acc:.1%}); "
              + ", ".join(f"{k}: {v}" for k, v in sorted(status.items())) + "."]
    agree = agreement_stats(store)["reviewers"]
    kappas = ", ".join(f"{k} {v:.2f}" for k, v in agree["kappa"].items()) or "n/a"
    alpha = agree["alpha"]
    parts += [f"Reviewer agreement over {agree['items']} reviewed items: Krippendorff's alpha "
              f"{_fmt(alpha if isinstance(alpha, float) else None, 2)}; pairwise Cohen's kappa: "
              f"{kappas}.", ""]
    return parts


def _provenance_section(store: Store, rows: Sequence[dict[str, Any]]) -> list[str]:
    parts = ["## Provenance and licences", ""]
    lics = Counter(r["license"] or "(none recorded)" for r in rows)
    parts += [_table(["licence", "triplets"], lics.most_common()), ""]
    dates = sorted(r["date"] for r in rows if r["date"])
    hosts = Counter(re.sub(r"^(\w+:(//)?[^/#]+).*", r"\1", r["source_url"])
                    for r in rows if r["source_url"])
    parts += [f"Source dates: {dates[0]} to {dates[-1]} ({len(dates)} dated)." if dates
              else "Source dates: none recorded.",
              "Sources: " + (", ".join(f"`{h}` ({c})" for h, c in hosts.most_common(10))
                             if hosts else "none recorded") + ".", ""]
    parts += ["## Filters applied to the corpus", ""]
    srcs = store.corpus.count_sources()
    reasons = Counter((s.filter_reason or "unspecified").split(":")[0].split(" ")[0]
                      for s in store.corpus.iter_sources("filtered"))
    parts += [f"{sum(srcs.values())} texts ingested, {srcs.get('ok', 0)} kept, "
              f"{srcs.get('filtered', 0)} filtered (dates, lengths, exact and near duplicates)."]
    where = json.loads(store.corpus.corpus_meta("where") or "[]")
    if where:
        parts += ["", "Source metadata conditions (all must hold; `where` in the table below): "
                  + ", ".join(f"`{c}`" for c in where) + "."]
    if reasons:
        parts += ["", _table(["filter reason", "texts"], reasons.most_common())]
    return parts + [""]


def _usefulness_section(urows: list[dict[str, Any]]) -> list[str]:
    from ..construct.usefulness import distribution

    parts = ["## Usefulness of the reasoning", ""]
    dist = distribution(urows)
    if not dist:
        return parts + ["Not measured (run `coig-writer construct usefulness`).", ""]
    return parts + [
        "Clipped mean NLL of the text under a base model (REER / DeepWriter measure: "
        "token log-probabilities clipped to [-2, 0]); `gain` = NLL with the prompt "
        "alone minus NLL with the prompt and this reasoning, `vs control` = NLL with "
        "another triplet's reasoning of the same genre minus NLL with this one. "
        "Positive: the reasoning makes the text more predictable.", "",
        _table(["genre", "n", "mean gain", "median", "min", "max", "vs control", "gain > 0"],
               [[d["group"], d["count"], _fmt(d["mean_gain"]), _fmt(d["median_gain"]),
                 _fmt(d["min_gain"]), _fmt(d["max_gain"]), _fmt(d["mean_gain_vs_control"]),
                 f"{d['positive']:.0%}"] for d in dist]), ""]


def _checks_section(triplets: Sequence[Triplet]) -> list[str]:
    return ["## LLM-free checks", "",
            "`coig_writer.construct.checks` with default thresholds over the published "
            "triplets (docs/gates.md): items failing each named check (`review`: only a "
            "reason for human review), and how many reasonings show each of the paper's five "
            "decision kinds (keyword detector, zh and en).", "",
            _table(["check / decision kind", "items"], _check_counts(triplets)), ""]


def _decontam_text(decon: DecontaminationReport | None, opts: PublishOptions) -> str:
    """The card's sentences on the n-gram contamination check."""
    if decon is None:
        return "Not checked (publishing ran without the n-gram contamination check)."
    s = decon.summary(opts.exclude_contaminated)
    sets = ", ".join(f"`{k}` ({v} prompts)" for k, v in s["sets"].items()) or "none"
    by_set = ", ".join(f"`{k}` {v}" for k, v in s["by_set"].items())
    text = (f"Each selected triplet's prompt and text were checked for shared n-grams "
            f"({s['ngrams']['zh_chars']} consecutive Chinese characters, or "
            f"{s['ngrams']['en_words']} consecutive words) with every prompt of: {sets}. "
            f"{s['contaminated']} of {s['checked']} triplets share at least one"
            + (f" ({by_set})" if by_set else "") + "; "
            + (f"they were excluded, {s['excluded']} in all." if opts.exclude_contaminated
               else "they were kept (publish with `--exclude-contaminated` to drop them)."))
    if s["unavailable"]:
        text += " Sets that could not be loaded: " + ", ".join(f"`{k}`" for k in s["unavailable"])
        text += "."
    return text
