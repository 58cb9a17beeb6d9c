"""The password sign-in as a signed, expiring cookie, so it holds in every tab and reload.

`st.session_state` lives per browser tab; the cookie carries the sign-in across tabs.
It is an HMAC-SHA256 signature (itsdangerous) over the user name, role, a random
session id and the expiry. The cookie is HttpOnly (page scripts cannot read it),
SameSite=Strict, Secure when served over https, Path=/.

A Streamlit script cannot set response headers, so the cookie is set by two small
Starlette routes that `dashboard/app.py` mounts with `st.App(routes=…)` (public API
of Streamlit 1.67, which serves on Starlette):

1. the sign-in form checks the password and `issue_grant()`s a one-time grant
   (random, single use, valid for `GRANT_TTL_S`, kept in this process's memory);
2. the page POSTs the grant with `fetch()` to `session_path()`; the route redeems it
   and answers with the Set-Cookie header. The grant is useless once redeemed, and
   the session token itself never reaches page JavaScript;
3. every script run `verify()`s the cookie of the request that opened the tab;
4. sign-out revokes the session id at once (a tab keeps the cookie it opened with,
   and a copied cookie must die too) and POSTs to `sign_out_path()`, which deletes
   the cookie. Revoked ids are kept, until they expire, in the state folder.

Configuration:
- REPORTRUNNER_DASHBOARD_SECRET (or `[auth] session_secret` in Streamlit secrets):
  the signing key, at least 32 characters. When absent, a random key is generated
  once into `$REPORTRUNNER_HOME/dashboard/session.key` (mode 0600) and reused.
  Changing the key signs everyone out.
- REPORTRUNNER_DASHBOARD_SESSION_HOURS: how long a sign-in lasts (default 8).

Nothing here logs or shows a token, the key or a grant.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import stat
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from itsdangerous import BadSignature, URLSafeSerializer

COOKIE = "reportrunner_session"
SECRET_ENV = "REPORTRUNNER_DASHBOARD_SECRET"
HOURS_ENV = "REPORTRUNNER_DASHBOARD_SESSION_HOURS"
DEFAULT_HOURS = 8.0
MAX_HOURS = 24.0 * 30
MIN_SECRET_CHARS = 32
GRANT_TTL_S = 120.0
_SALT = "reportrunner.dashboard.session"
_KEY_FILE = Path("dashboard") / "session.key"
_REVOKED_FILE = Path("dashboard") / "revoked-sessions.json"
_ROUTE_SESSION = "reportrunner/session"
_ROUTE_SIGN_OUT = "reportrunner/sign-out"


class SessionConfigError(Exception):
    """The session key or lifetime is configured wrongly; one line, no secret."""


@dataclass(frozen=True)
class Session:
    """A verified sign-in: who, in which role, which session, until when (epoch s)."""

    name: str
    role: str
    sid: str = field(repr=False)
    expires: float


# ---- configuration ----------------------------------------------------------------------


def lifetime_s(env: Mapping[str, str] | None = None) -> float:
    """Seconds a sign-in lasts: REPORTRUNNER_DASHBOARD_SESSION_HOURS, default 8 h."""
    env = os.environ if env is None else env
    raw = (env.get(HOURS_ENV) or "").strip()
    if not raw:
        return DEFAULT_HOURS * 3600
    try:
        hours = float(raw)
    except ValueError:
        raise SessionConfigError(f"{HOURS_ENV} must be a number of hours, got {raw!r}") from None
    if not 0 < hours <= MAX_HOURS:
        raise SessionConfigError(f"{HOURS_ENV} must be more than 0 and at most {MAX_HOURS:g}")
    return hours * 3600


def signing_key(configured: str | None, home: Path) -> bytes:
    """The configured secret, or the key generated once under `home` (0600)."""
    if configured:
        if len(configured) < MIN_SECRET_CHARS:
            raise SessionConfigError(
                f"the session secret ({SECRET_ENV}) must be at least {MIN_SECRET_CHARS} characters"
            )
        return configured.encode()
    return _key_file(home / _KEY_FILE)


def key_for(configured: str | None, home: Path) -> bytes:
    """The signing key, with the revocation list kept under the same `home`."""
    revocations.use(home)
    return signing_key(configured, home)


def _key_file(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:  # O_EXCL: two processes starting at once still agree on one key
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as sink:
            sink.write(secrets.token_hex(32))
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        raise SessionConfigError(
            f"the session key file {_KEY_FILE} under REPORTRUNNER_HOME may be read by others: "
            "make it mode 600, or delete it to have a new one made"
        )
    key = path.read_text().strip()
    if len(key) < MIN_SECRET_CHARS:
        raise SessionConfigError(f"the session key file {_KEY_FILE} is damaged: delete it")
    return key.encode()


# ---- tokens -----------------------------------------------------------------------------


def _serializer(key: bytes) -> URLSafeSerializer:
    return URLSafeSerializer(key, salt=_SALT, signer_kwargs={"digest_method": hashlib.sha256})


def sign(key: bytes, name: str, role: str, lifetime: float, now: float | None = None) -> str:
    """A new session token for `name` in `role`, valid for `lifetime` seconds."""
    now = time.time() if now is None else now
    payload = {"u": name, "r": role, "sid": secrets.token_urlsafe(16), "exp": int(now + lifetime)}
    return _serializer(key).dumps(payload)


def verify(token: str | None, key: bytes, now: float | None = None) -> Session | None:
    """The session a token stands for; None when tampered, expired, revoked or malformed."""
    if not token or len(token) > 4096:
        return None
    serializer = _serializer(key)
    try:
        payload = serializer.loads(token)
    except BadSignature:
        return None
    if not isinstance(payload, dict):
        return None
    # Only the form `sign` made: base64 lets the last character of a signature vary in
    # bits it does not decode, so three other spellings of a token would pass as well.
    if not hmac.compare_digest(token.encode(), serializer.dumps(payload).encode()):
        return None
    name, role, sid, exp = (payload.get(k) for k in ("u", "r", "sid", "exp"))
    if not (isinstance(name, str) and isinstance(role, str) and isinstance(sid, str)):
        return None
    if not isinstance(exp, int) or exp <= (time.time() if now is None else now):
        return None
    if revocations.is_revoked(sid):
        return None
    return Session(name=name, role=role, sid=sid, expires=float(exp))


# ---- revocation (sign-out) ----------------------------------------------------------------


class Revocations:
    """Session ids signed out before they expired; kept in a 0600 file under the home."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._revoked: dict[str, float] = {}
        self._path: Path | None = None

    def use(self, home: Path) -> None:
        """Keep the list under `home` (read what an earlier process left there)."""
        path = home / _REVOKED_FILE
        with self._lock:
            if path == self._path:
                return
            self._path = path
            try:
                stored = json.loads(path.read_text())
            except (OSError, ValueError):
                stored = {}
            if isinstance(stored, dict):
                self._revoked.update(
                    {str(k): float(v) for k, v in stored.items() if isinstance(v, int | float)}
                )

    def revoke(self, session: Session) -> None:
        with self._lock:
            now = time.time()
            self._revoked = {k: v for k, v in self._revoked.items() if v > now}
            self._revoked[session.sid] = session.expires
            self._save()

    def is_revoked(self, sid: str) -> bool:
        with self._lock:
            return sid in self._revoked

    def _save(self) -> None:
        if self._path is None:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = self._path.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as sink:
            json.dump(self._revoked, sink)
        os.replace(temporary, self._path)


revocations = Revocations()


# ---- one-time grants: the sign-in form hands the cookie route a session ------------------


class _Grants:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._grants: dict[str, tuple[str, float]] = {}  # sha256(grant) → (token, deadline)

    def issue(self, token: str, now: float | None = None) -> str:
        now = time.time() if now is None else now
        grant = secrets.token_urlsafe(32)
        with self._lock:
            self._grants = {k: v for k, v in self._grants.items() if v[1] > now}
            self._grants[_digest(grant)] = (token, now + GRANT_TTL_S)
        return grant

    def redeem(self, grant: str, now: float | None = None) -> str | None:
        now = time.time() if now is None else now
        with self._lock:
            found = self._grants.pop(_digest(grant), None)
        return found[0] if found and found[1] > now else None


def _digest(grant: str) -> str:
    return hashlib.sha256(grant.encode()).hexdigest()


_grants = _Grants()
issue_grant = _grants.issue
redeem_grant = _grants.redeem


# ---- the routes that set and delete the cookie ----------------------------------------------


def _base(base_url_path: str | None) -> str:
    base = (base_url_path or "").strip("/")
    return f"/{base}/" if base else "/"


def session_path(base_url_path: str | None = None) -> str:
    return _base(base_url_path) + _ROUTE_SESSION


def sign_out_path(base_url_path: str | None = None) -> str:
    return _base(base_url_path) + _ROUTE_SIGN_OUT


def cookie_settings(secure: bool, lifetime: float, base_url_path: str | None = None) -> dict:
    """The Set-Cookie attributes, in Starlette's `set_cookie` keywords."""
    return {
        "max_age": int(lifetime),
        "path": _base(base_url_path),
        "httponly": True,
        "samesite": "strict",
        "secure": secure,
    }


def same_origin(headers: Mapping[str, str]) -> bool:
    """Only the dashboard's own pages may call the routes (no cross-site sign-in or out)."""
    if headers.get("sec-fetch-site", "same-origin") != "same-origin":
        return False
    origin, host = headers.get("origin", ""), headers.get("host", "")
    return bool(origin and host) and urlsplit(origin).netloc == host


def is_https(scheme: str, headers: Mapping[str, str]) -> bool:
    # A proxy that ends TLS says so; believing it only ever adds the Secure flag.
    return scheme == "https" or headers.get("x-forwarded-proto", "").lower() == "https"


def routes(base_url_path: str | None, key: Any, lifetime: Any) -> list:
    """The two Starlette routes; `key()` and `lifetime()` are read per request."""
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    def _refused() -> Response:
        return Response("refused", status_code=403, media_type="text/plain")

    async def create(request: Request) -> Response:
        if not same_origin(request.headers):
            return _refused()
        grant = (await request.body())[:200].decode(errors="replace").strip()
        token = redeem_grant(grant) if grant else None
        if token is None:
            return _refused()
        response = Response(status_code=204)
        secure = is_https(request.url.scheme, request.headers)
        response.set_cookie(COOKIE, token, **cookie_settings(secure, lifetime(), base_url_path))
        return response

    async def delete(request: Request) -> Response:
        if not same_origin(request.headers):
            return _refused()
        try:
            found = verify(request.cookies.get(COOKIE), key())
        except SessionConfigError:  # the page says so; the cookie still goes
            found = None
        if found is not None:
            revocations.revoke(found)
        response = Response(status_code=204)
        settings = cookie_settings(is_https(request.url.scheme, request.headers), 0, base_url_path)
        settings.pop("max_age")
        response.delete_cookie(COOKIE, **settings)
        return response

    return [
        Route(session_path(base_url_path), create, methods=["POST"]),
        Route(sign_out_path(base_url_path), delete, methods=["POST"]),
    ]


def post_script(path: str, body: str = "") -> str:
    """The page script that calls a route; `body` is a URL-safe grant or empty."""
    if not all(c.isalnum() or c in "-_/" for c in path + body):
        raise ValueError("unexpected characters in a session route call")
    return (
        f'<script>fetch("{path}", {{method: "POST", credentials: "same-origin", '
        f'headers: {{"Content-Type": "text/plain"}}, body: "{body}"}});</script>'
    )
