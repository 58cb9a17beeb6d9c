"""Salted scrypt password hashes for the dashboard's users: make one, check one.

No Streamlit and no settings here: `reportrunner hash-password` and the dashboard's
sign-in (`dashboard/auth.py`) share these few functions and nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

_SCHEME = "scrypt"
# scrypt cost: ~50 ms and 16 MiB per check, which makes guessing slow and stays in
# OpenSSL's default memory limit.
_N, _R, _P, _KEY_BYTES = 2**14, 8, 1, 32


def hash_password(password: str, salt: bytes | None = None) -> str:
    """'scrypt$n$r$p$salt$key' (base64): what goes into secrets or the environment."""
    if not password:
        raise ValueError("the password is empty")
    salt = salt or secrets.token_bytes(16)
    key = _scrypt(password, salt, _N, _R, _P)
    return "$".join([_SCHEME, str(_N), str(_R), str(_P), _b64(salt), _b64(key)])


def verify_password(password: str, stored: str) -> bool:
    """Constant-time check of `password` against a `hash_password` string."""
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != _SCHEME:
            return False
        expected = base64.b64decode(key, validate=True)
        actual = _scrypt(password, base64.b64decode(salt, validate=True), int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, dklen=_KEY_BYTES, maxmem=64 * 2**20
    )


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


# A hash of nothing anyone knows: unknown names cost as much as wrong passwords.
DUMMY_HASH = hash_password(secrets.token_hex(16))


def is_password_hash(value: object) -> bool:
    """Looks like what `hash_password` makes (the scheme prefix, not a verification)."""
    return isinstance(value, str) and value.startswith(f"{_SCHEME}$")
