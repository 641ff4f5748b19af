"""Review app authentication: users, sessions, login failures (throttling), single-use login
form tokens and the audit log. Apart from the dataset, so a security review reads one file."""

from __future__ import annotations

from typing import Any

from ..records import utcnow
from .db import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
  username TEXT PRIMARY KEY, pw_hash TEXT NOT NULL, role TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
  token_hash TEXT PRIMARY KEY, username TEXT NOT NULL, csrf TEXT NOT NULL, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS login_failures (kind TEXT NOT NULL, key TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS login_failures_key ON login_failures(kind, key, at);
CREATE TABLE IF NOT EXISTS login_tokens (token_hash TEXT PRIMARY KEY, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS audit_log (
  id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
  item_id TEXT, detail TEXT NOT NULL, address TEXT);
"""


class AuthRepo:
    """The only place that knows the authentication and audit tables."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add_user(self, username: str, pw_hash: str, role: str) -> bool:
        """Create or reset a user; a reset (new password or role) ends the user's sessions.
        Returns True when the user already existed."""
        with self.db.transaction():
            existed = self.db.execute("SELECT 1 FROM users WHERE username=?",
                                      (username,)).fetchone() is not None
            self.db.execute("INSERT OR REPLACE INTO users(username, pw_hash, role, created_at) "
                            "VALUES (?,?,?,?)", (username, pw_hash, role, utcnow()))
            self.db.execute("DELETE FROM sessions WHERE username=?", (username,))
        return existed

    def get_user(self, username: str) -> dict[str, str] | None:
        row = self.db.execute("SELECT username, pw_hash, role FROM users WHERE username=?",
                              (username,)).fetchone()
        return {"username": row[0], "pw_hash": row[1], "role": row[2]} if row else None

    def users(self, role: str | None = None) -> list[dict[str, str]]:
        rows = self.db.select("SELECT username, role FROM users", "username", role=role or None)
        return [{"username": u, "role": r} for u, r in rows]

    # -- sessions ---------------------------------------------------------------------------
    def put_session(self, token_hash: str, username: str, csrf: str, expires: float,
                    now: float) -> None:
        self.db.write("INSERT INTO sessions(token_hash, username, csrf, expires, last_seen) "
                      "VALUES (?,?,?,?,?)", (token_hash, username, csrf, expires, now))

    def get_session(self, token_hash: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT username, csrf, expires, last_seen FROM sessions "
                              "WHERE token_hash=?", (token_hash,)).fetchone()
        return ({"username": row[0], "csrf": row[1], "expires": row[2], "last_seen": row[3]}
                if row else None)

    def touch_session(self, token_hash: str, now: float) -> None:
        self.db.write("UPDATE sessions SET last_seen=? WHERE token_hash=?", (now, token_hash))

    def delete_session(self, token_hash: str) -> None:
        self.db.write("DELETE FROM sessions WHERE token_hash=?", (token_hash,))

    def purge_sessions(self, now: float, idle_s: float) -> int:
        """Delete expired and idle sessions; returns how many."""
        return self.db.write("DELETE FROM sessions WHERE expires<? OR COALESCE(last_seen, 0)<?",
                             (now, now - idle_s)).rowcount

    def count_sessions(self, username: str | None = None) -> int:
        return len(list(self.db.select("SELECT 1 FROM sessions", username=username)))

    # -- login throttling and form tokens ---------------------------------------------------
    def add_login_failure(self, kind: str, key: str, at: float) -> None:
        self.db.write("INSERT INTO login_failures(kind, key, at) VALUES (?,?,?)", (kind, key, at))

    def login_failures(self, kind: str, key: str, since: float) -> list[float]:
        rows = self.db.execute("SELECT at FROM login_failures WHERE kind=? AND key=? AND at>=? "
                               "ORDER BY at", (kind, key, since))
        return [r[0] for r in rows]

    def clear_login_failures(self, kind: str, key: str) -> None:
        self.db.write("DELETE FROM login_failures WHERE kind=? AND key=?", (kind, key))

    def purge_login_failures(self, before: float) -> None:
        self.db.write("DELETE FROM login_failures WHERE at<?", (before,))

    def put_login_token(self, token_hash: str, expires: float, now: float,
                        keep: int = 10_000) -> None:
        """Store a login form token; expired ones go, and at most `keep` stay (oldest go)."""
        with self.db.transaction():
            self.db.execute("DELETE FROM login_tokens WHERE expires<?", (now,))
            self.db.execute("INSERT OR REPLACE INTO login_tokens(token_hash, expires) "
                            "VALUES (?,?)", (token_hash, expires))
            self.db.execute("DELETE FROM login_tokens WHERE token_hash NOT IN (SELECT token_hash "
                            "FROM login_tokens ORDER BY expires DESC LIMIT ?)", (keep,))

    def take_login_token(self, token_hash: str, now: float) -> bool:
        """Consume a login form token; True once for a token that exists and has not expired."""
        with self.db.transaction():
            self.db.execute("DELETE FROM login_tokens WHERE expires<?", (now,))
            return self.db.execute("DELETE FROM login_tokens WHERE token_hash=?",
                                   (token_hash,)).rowcount == 1

    # -- audit log --------------------------------------------------------------------------
    def audit(self, actor: str, action: str, item_id: str | None = None, detail: str = "",
              address: str | None = None) -> None:
        self.db.write("INSERT INTO audit_log(at, actor, action, item_id, detail, address) "
                      "VALUES (?,?,?,?,?,?)", (utcnow(), actor, action, item_id, detail, address))

    def audit_log(self, action: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        keys = ("id", "at", "actor", "action", "item_id", "detail", "address")
        rows = self.db.select(f"SELECT {', '.join(keys)} FROM audit_log", "id DESC",
                              action=action).fetchmany(limit)
        return [dict(zip(keys, r, strict=True)) for r in rows]
