"""Passwords (scrypt), server-side sessions with idle timeout, login throttling, CSRF tokens
and roles."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from functools import cache
from importlib import resources

from ..store import Store

ROLES = ("admin", "reviewer", "rater")
SESSION_TTL_S = 12 * 3600
IDLE_TIMEOUT_S = 2 * 3600
MIN_PASSWORD = 10
LOGIN_TOKEN_TTL_S = 3600
# failed logins within WINDOW_S before further attempts are refused (429) until the window passes
WINDOW_S = 15 * 60
MAX_FAILS_ACCOUNT = 5
MAX_FAILS_ADDRESS = 20


class Throttled(Exception):
    """Too many failed logins for this account or address; `retry_after` seconds to wait."""

    def __init__(self, retry_after: int):
        super().__init__(f"too many failed logins; try again in {retry_after} s")
        self.retry_after = retry_after


@cache
def common_passwords() -> frozenset[str]:
    text = resources.files("coig_writer.review").joinpath("data/common_passwords.txt").read_text(
        "utf-8")
    return frozenset(x.strip().lower() for x in text.splitlines() if x.strip()
                     and not x.startswith("#"))


def check_password(password: str, username: str = "") -> None:
    """Raise ValueError for a short, common or username-derived password."""
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"passwords need at least {MIN_PASSWORD} characters")
    low = password.lower()
    if low in common_passwords() or len(set(low)) < 4:
        raise ValueError("this password is too common; choose a longer passphrase")
    if username and username.lower() in low:
        raise ValueError("the password must not contain the username")


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        _, salt, digest = stored.split("$")
    except ValueError:
        return False
    got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=2**14, r=8, p=1)
    return hmac.compare_digest(got.hex(), digest)


@cache
def _dummy_hash() -> str:
    """Checked against for unknown users, so they cost the same scrypt time as known ones."""
    return hash_password(secrets.token_urlsafe(16))


def add_user(store: Store, username: str, password: str, role: str) -> bool:
    """Create a user, or reset one's password and role (ending all their sessions).
    Returns True for a reset."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    if not username.isidentifier():
        raise ValueError("usernames are letters, digits and underscores")
    check_password(password, username)
    return store.auth.add_user(username, hash_password(password), role)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _throttle(store: Store, address: str, username: str, now: float) -> None:
    for kind, key, limit in (("account", username.lower(), MAX_FAILS_ACCOUNT),
                             ("address", address, MAX_FAILS_ADDRESS)):
        fails = store.auth.login_failures(kind, key, now - WINDOW_S)
        if len(fails) >= limit:
            raise Throttled(max(1, int(fails[-limit] + WINDOW_S - now) + 1))


def login(store: Store, username: str, password: str, address: str = "") -> str | None:
    """A new session token for valid credentials, else None. Raises Throttled while the
    account or the address has too many recent failures (the password is not checked then)."""
    now = time.time()
    _throttle(store, address, username, now)
    user = store.auth.get_user(username)
    ok = verify_password(password, user["pw_hash"] if user else _dummy_hash())
    if user is None or not ok:
        store.auth.add_login_failure("account", username.lower(), now)
        store.auth.add_login_failure("address", address, now)
        return None
    store.auth.clear_login_failures("account", username.lower())
    store.auth.purge_login_failures(now - WINDOW_S)
    store.auth.purge_sessions(now, IDLE_TIMEOUT_S)
    token = secrets.token_urlsafe(32)
    store.auth.put_session(_token_hash(token), username, secrets.token_urlsafe(24),
                      now + SESSION_TTL_S, now)
    return token


def session_user(store: Store, token: str | None) -> dict[str, str] | None:
    """The user (with the session's `csrf` token) behind a session cookie, if it is valid and
    has not been idle longer than IDLE_TIMEOUT_S; using it keeps it alive."""
    if not token:
        return None
    th = _token_hash(token)
    sess = store.auth.get_session(th)
    now = time.time()
    if sess is None:
        return None
    if sess["expires"] < now or (sess["last_seen"] or 0) < now - IDLE_TIMEOUT_S:
        store.auth.delete_session(th)
        return None
    if now - (sess["last_seen"] or 0) > 60:
        store.auth.touch_session(th, now)
    user = store.auth.get_user(sess["username"])
    return {**user, "csrf": sess["csrf"]} if user else None


def logout(store: Store, token: str) -> None:
    store.auth.delete_session(_token_hash(token))


def new_login_token(store: Store) -> str:
    token = secrets.token_urlsafe(24)
    now = time.time()
    store.auth.put_login_token(_token_hash(token), now + LOGIN_TOKEN_TTL_S, now)
    return token


def take_login_token(store: Store, cookie: str | None, given: str | None) -> bool:
    """The login form token must match its cookie and is valid once."""
    return csrf_ok(cookie or "", given) and store.auth.take_login_token(_token_hash(given or ""),
                                                                   time.time())


def csrf_ok(expected: str, given: str | None) -> bool:
    return bool(given) and bool(expected) and hmac.compare_digest(expected, given or "")
