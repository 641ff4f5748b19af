"""The construction pipeline on the embedded backend with the real 0.5B GGUF model."""

import asyncio

import pytest

from coig_writer.construct.ingest import ingest
from coig_writer.construct.pipeline import ConstructPipeline, triplet_id
from coig_writer.construct.runner import run_local
from coig_writer.llm.engine import LocalBackend
from coig_writer.records import SCORE_DIMENSIONS

from .conftest import SAMPLE, fast_config

pytestmark = pytest.mark.slow


def test_embedded_backend_builds_a_triplet_and_replays_from_cache(store, small_model):
    ingest([SAMPLE], store)
    backend = LocalBackend(small_model, name="qwen2.5-coder-0.5b", n_ctx=4096)
    pipe = ConstructPipeline(store, backend, fast_config(max_rounds=1, screen_threshold=0))
    summary = asyncio.run(run_local(pipe, limit=1, concurrency=1))
    assert summary.pending == 1 and not summary.errors
    src = next(store.corpus.iter_sources())
    trip = store.construct.get_triplet(triplet_id(src.id))
    assert trip.answer == src.text and trip.provenance.source_url.startswith("npm:chinese-poetry")
    assert trip.status == "accepted" or trip.reasons  # anything else says why
    assert trip.model == "llama.cpp:qwen2.5-coder-0.5b"
    assert set(trip.templates) >= {"screen", "reconstruct_prompt", "reasoning", "validate", "score"}
    stages = store.construct.stages_for(src.id)
    assert stages[0].stage == "screen" and stages[0].ok
    assert {s.stage for s in stages} >= {"screen", "reconstruct_prompt"}
    # every stage result points at raw calls kept verbatim in the store
    rows = {r["key"]: r for r in store.cache.cache_rows()}
    assert summary.llm_calls == len(rows) > 1
    for s in stages:
        assert s.template_hash == trip.templates[s.stage]
        for k in s.cache_keys:
            assert rows[k]["request"]["tags"][s.stage] == s.template_hash
    if trip.scores:
        assert set(trip.scores.model_dump()) == set(SCORE_DIMENSIONS)

    # a rerun of the same item replays every usable answer from the cache; answers the policy
    # rejected (truncated, looping, unparseable) are asked again, never replayed as final
    again = asyncio.run(run_local(ConstructPipeline(
        store, backend, fast_config(max_rounds=1, screen_threshold=0)), limit=1, redo=True))
    assert again.cache_hits >= summary.llm_calls - summary.totals["unusable"]
    if summary.totals["unusable"] == 0:
        assert again.llm_calls == 0
        replayed = store.construct.get_triplet(trip.id)
        assert (replayed.query, replayed.thought, replayed.status) == \
            (trip.query, trip.thought, trip.status)
    else:
        assert again.llm_calls >= 1

    # a stricter screen (no text scores 11) rejects the item without any new call
    strict = asyncio.run(run_local(ConstructPipeline(
        store, backend, fast_config(screen_threshold=11)), limit=1, redo=True))
    assert strict.llm_calls == 0 and strict.statuses == {"rejected": 1}
    assert store.construct.get_triplet(trip.id).reasons[-1].startswith("screen: quality=")
    assert len(list(store.construct.iter_triplets())) == 1
