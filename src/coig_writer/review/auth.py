"""Passwords (scrypt), server-side sessions, CSRF tokens and roles."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from ..store import Store

ROLES = ("admin", "reviewer", "rater")
SESSION_TTL_S = 12 * 3600


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise ValueError("passwords need at least 8 characters")
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


def add_user(store: Store, username: str, password: str, role: str) -> None:
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    if not username.isidentifier():
        raise ValueError("usernames are letters, digits and underscores")
    store.add_user(username, hash_password(password), role)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def login(store: Store, username: str, password: str) -> str | None:
    """A new session token for valid credentials, else None."""
    user = store.get_user(username)
    if user is None or not verify_password(password, user["pw_hash"]):
        return None
    token = secrets.token_urlsafe(32)
    store.put_session(_token_hash(token), username, secrets.token_urlsafe(24),
                      time.time() + SESSION_TTL_S)
    return token


def session_user(store: Store, token: str | None) -> dict[str, str] | None:
    """The user (with the session's `csrf` token) behind a session cookie, if it is valid."""
    if not token:
        return None
    sess = store.get_session(_token_hash(token))
    if sess is None or sess["expires"] < time.time():
        return None
    user = store.get_user(sess["username"])
    return {**user, "csrf": sess["csrf"]} if user else None


def logout(store: Store, token: str) -> None:
    store.delete_session(_token_hash(token))


def csrf_ok(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected, given or "")
