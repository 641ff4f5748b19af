"""Two processes on one store (issue 21, failures 6 and 7): item leases make them share the
work instead of sending every request twice; a run's scope is the pending items when it starts
(`--follow` takes later ones too); a dead holder's items come back."""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter

from coig_writer.construct.pipeline import ConstructPipeline
from coig_writer.llm.openai_compat import OpenAICompatBackend
from coig_writer.records import SourceText
from coig_writer.store import Store

from .review_fixtures import StageStub
from .test_scaleout import TEXT, cli, fill


def duplicates(srv) -> int:
    counts = Counter(json.dumps(b, sort_keys=True, ensure_ascii=False) for b in srv.requests)
    return sum(n - 1 for n in counts.values())


def test_two_construct_runs_on_one_store_share_the_work(tmp_path):
    db = tmp_path / "s.sqlite"
    with Store(db) as s:
        fill(s, 24)
    with StageStub(delay=0.15) as stub:
        args = ("construct", "run", "--db", str(db), "--backend", "openai", "--base-url",
                stub.base_url, "--model", "stub", "--concurrency", "3")
        first = cli(*args)
        deadline = time.time() + 60
        while len(stub.requests) < 12 and time.time() < deadline and first.poll() is None:
            time.sleep(0.02)
        in_flight = stub.inflight
        second = cli(*args)
        outs = [p.communicate(timeout=300)[0] for p in (first, second)]
        assert [first.returncode, second.returncode] == [0, 0], outs
        dup = duplicates(stub)
    with Store(db) as s:
        assert s.construct.count_triplets() == {"accepted": 24}
    assert dup <= in_flight, (dup, in_flight)
    assert dup == 0  # leases: the second never takes an item the first is working on
    made = [int(o.split("'accepted': ")[1].split("}")[0]) if "'accepted'" in o else 0 for o in outs]
    assert sum(made) == 24 and min(made) > 0, outs  # both did some of the work


def test_scope_is_fixed_at_start_unless_follow(tmp_path):
    with Store(tmp_path / "s.sqlite") as s:
        fill(s, 3)
        pipe = ConstructPipeline(s, OpenAICompatBackend("http://127.0.0.1:9/v1", "m"))
        pipe.start_run()
        s.corpus.add_source(SourceText(id="late", text=TEXT + "late", ingested_at="2999-01-01"))
        assert [t.id for t in pipe.pending()] == ["s000", "s001", "s002"]
        pipe.start_run(follow=True)
        assert [t.id for t in pipe.pending()][-1] == "late"


def test_leases_expire_and_a_dead_holder_releases_at_once(tmp_path):
    with Store(tmp_path / "s.sqlite") as s:
        leases = s.leases
        assert leases.claim("construct", "a", "otherhost:1:x", ttl_s=0.3)
        assert not leases.claim("construct", "a", "me:2:y", ttl_s=10)  # held elsewhere
        time.sleep(0.4)
        assert leases.claim("construct", "a", "me:2:y", ttl_s=10)  # expired: taken over
        dead = subprocess.Popen(["true"])
        dead.wait()
        import socket

        assert leases.claim("construct", "b", f"{socket.gethostname()}:{dead.pid}:z", ttl_s=60)
        assert leases.claim("construct", "b", "me:2:y", ttl_s=10)  # its process is gone
        assert {r[1] for r in leases.held()} == {"a", "b"}
        leases.release_all("me:2:y")
        assert leases.held() == []
