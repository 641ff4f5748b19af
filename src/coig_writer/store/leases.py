"""Leases: which process works on which item now, so that several processes on one store share
the work instead of doing it twice. A lease has an expiry its holder renews while it works; a
holder that dies stops renewing, and its items come back when the lease expires (at once when
the holder was a process on this machine that no longer exists)."""

from __future__ import annotations

import os
import socket
import time

from .db import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS leases (
  kind TEXT NOT NULL, item TEXT NOT NULL, holder TEXT NOT NULL, expires REAL NOT NULL,
  PRIMARY KEY (kind, item));
CREATE INDEX IF NOT EXISTS leases_holder ON leases(holder);
"""


def holder_name() -> str:
    """host:pid:nonce of this process (the nonce tells two runs of one process apart)."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


def holder_gone(holder: str) -> bool:
    """True when `holder` was a process on this machine that no longer exists."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class LeasesRepo:
    """The only place that knows the `leases` table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def claim(self, kind: str, item: str, holder: str, ttl_s: float) -> bool:
        """Take `item` for `ttl_s` seconds unless another live holder has it."""
        now = time.time()
        with self.db.transaction() as conn:
            row = conn.execute("SELECT holder, expires FROM leases WHERE kind=? AND item=?",
                               (kind, item)).fetchone()
            if row and row[0] != holder and row[1] > now and not holder_gone(row[0]):
                return False
            conn.execute("INSERT OR REPLACE INTO leases(kind, item, holder, expires) "
                         "VALUES (?,?,?,?)", (kind, item, holder, now + ttl_s))
        return True

    def renew(self, holder: str, ttl_s: float) -> int:
        """Push the expiry of every lease of `holder`; returns how many it holds."""
        return self.db.write("UPDATE leases SET expires=? WHERE holder=?",
                             (time.time() + ttl_s, holder)).rowcount

    def release(self, kind: str, item: str, holder: str) -> None:
        self.db.write("DELETE FROM leases WHERE kind=? AND item=? AND holder=?",
                      (kind, item, holder))

    def release_all(self, holder: str) -> None:
        self.db.write("DELETE FROM leases WHERE holder=?", (holder,))

    def held(self, kind: str | None = None) -> list[tuple[str, str, str, float]]:
        """(kind, item, holder, expires) of the leases not yet expired."""
        rows = self.db.execute("SELECT kind, item, holder, expires FROM leases WHERE expires>? "
                               "ORDER BY kind, item", (time.time(),)).fetchall()
        return [r for r in rows if kind is None or r[0] == kind]
