"""The connection to the Prefect API: configuration, call counting, errors without secrets.

`connect()` opens one short-lived `Api`. It talks to the URL in `PREFECT_API_URL`
(the environment first, then the active Prefect profile), sends
`PREFECT_API_AUTH_STRING` (basic auth) or `PREFECT_API_KEY` when set, never starts
Prefect's throw-away ephemeral server, and counts every HTTP request it makes, so a
test can prove that a page refresh or a metrics scrape costs a bounded number of calls.

Any transport or HTTP failure leaves as `ApiUnavailable`, whose message is one line
without credentials. `ApiConfig.transport` is the seam for tests: an
`httpx.MockTransport` answers instead of a server.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

log = logging.getLogger(__name__)

_MESSAGE_CHARS = 200
# A server started with PREFECT_SERVER_API_AUTH_STRING answers 401 to anyone without it.
AUTH_HINT = "authentication failed: set PREFECT_API_AUTH_STRING to the server's user:password"


class ApiUnavailable(Exception):
    """The Prefect API could not answer; the message is one line, safe to show."""


@dataclass(frozen=True)
class ApiConfig:
    url: str
    auth_string: str | None = field(default=None, repr=False)
    api_key: str | None = field(default=None, repr=False)
    timeout_s: float = 5.0
    retries: int = 1  # a page or a probe must not hang for a minute of back-off
    transport: httpx.BaseTransport | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_env(cls, timeout_s: float = 5.0, **options: Any) -> ApiConfig:
        """The environment wins over the Prefect profile: the dashboard's choice, since it
        runs with the environment `up` (or its service manager) gives it."""
        from prefect.settings import get_current_settings

        api = get_current_settings().api
        url = os.environ.get("PREFECT_API_URL") or api.url or ""
        auth = os.environ.get("PREFECT_API_AUTH_STRING") or _secret(api.auth_string)
        key = os.environ.get("PREFECT_API_KEY") or _secret(api.key)
        return cls(
            url=url.rstrip("/"), auth_string=auth, api_key=key, timeout_s=timeout_s, **options
        )

    @classmethod
    def active(cls, timeout_s: float = 5.0, **options: Any) -> ApiConfig:
        """Prefect's active settings, as its own `get_client()` sees them: a command's
        choice, so that `temporary_settings(...)` and profiles are honoured."""
        from prefect.settings import get_current_settings

        api = get_current_settings().api
        return cls(
            url=(api.url or "").rstrip("/"),
            auth_string=_secret(api.auth_string),
            api_key=_secret(api.key),
            timeout_s=timeout_s,
            **options,
        )

    @property
    def safe_url(self) -> str:
        """The URL without user info or query, fit for a banner or a log."""
        return safe_url(self.url)

    @property
    def headers(self) -> dict[str, str]:
        """The Authorization header the Prefect client sends, for plain httpx calls."""
        if self.auth_string:
            token = base64.b64encode(self.auth_string.encode()).decode()
            return {"Authorization": f"Basic {token}"}
        if self.api_key:
            return {"Authorization": f"Bearer {self.api_key}"}
        return {}

    def redact(self, text: str) -> str:
        """`text` without the URL's user info and query, the auth string or the key."""
        if self.url and self.url != self.safe_url:
            text = text.replace(self.url, self.safe_url)
        try:
            password = urlsplit(self.url).password
        except ValueError:
            password = None
        secrets = [s for s in (self.auth_string, self.api_key, password) if s]
        secrets += [base64.b64encode(s.encode()).decode() for s in secrets]
        for secret in secrets:
            text = text.replace(secret, "***")
        return text


class Api:
    """One open connection: a Prefect sync client plus a count of HTTP requests sent."""

    def __init__(self, config: ApiConfig) -> None:
        from prefect.client.orchestration import SyncPrefectClient

        self.config = config
        self.calls = 0
        self._calls_lock = threading.Lock()  # pages may read in parallel threads
        httpx_settings: dict[str, Any] = {
            "timeout": config.timeout_s,
            "event_hooks": {"request": [self._count]},
        }
        if config.transport is not None:
            httpx_settings["transport"] = config.transport
        self.client = SyncPrefectClient(
            config.url,
            auth_string=config.auth_string,
            api_key=config.api_key,
            httpx_settings=httpx_settings,
        )

    def _count(self, request: httpx.Request) -> None:
        with self._calls_lock:
            self.calls += 1

    def post(self, path: str, body: Any) -> Any:
        """A raw POST for endpoints the client has no method for; the JSON answer."""
        response = self.client.request("POST", path, json=body)  # type: ignore[arg-type]
        response.raise_for_status()
        return response.json() if response.content else None

    def health_error(self) -> Exception | None:
        """None when the API answers its health check, else what went wrong."""
        return self.client.api_healthcheck()  # returns the error instead of raising

    @contextlib.contextmanager
    def guard(self, what: str) -> Iterator[None]:
        """Turn whatever the API or the network raises into `ApiUnavailable`."""
        try:
            yield
        except ApiUnavailable:
            raise
        except Exception as exc:
            log.warning("reading %s from %s failed", what, self.config.safe_url)
            log.debug("traceback", exc_info=True)
            raise ApiUnavailable(self.message(what, exc)) from exc

    def message(self, what: str, exc: BaseException) -> str:
        text = f"Prefect API at {self.config.safe_url} failed while reading {what}: "
        return one_line(self.config.redact(text + describe(exc))) or ""


@contextlib.contextmanager
def connect(config: ApiConfig | None = None) -> Iterator[Api]:
    """An `Api` for one page refresh, scrape or command; `ApiUnavailable` without a URL."""
    config = config or ApiConfig.from_env()
    if not config.url:
        raise ApiUnavailable("Prefect API not configured: PREFECT_API_URL is not set")
    if urlsplit(config.url).scheme not in ("http", "https"):
        raise ApiUnavailable(f"PREFECT_API_URL is not an http(s) URL: {config.safe_url}")
    api = Api(config)
    with _client_settings(config.retries), api.client:
        yield api  # opening sends nothing; each query guards its own calls


_settings_lock = threading.Lock()
_settings_copies: dict[tuple, tuple[Any, Any]] = {}  # key → (settings copied from, the copy)


@contextlib.contextmanager
def _client_settings(retries: int) -> Iterator[None]:
    """`temporary_settings(updates={PREFECT_CLIENT_MAX_RETRIES: retries})`, copied once.

    `temporary_settings` copies Prefect's whole settings object on every call: pydantic
    re-reads the environment and the .env files, about 30 ms of CPU on a 2-core machine,
    for every page refresh and scrape. The copy depends only on the settings it was made
    from, the retries and the PREFECT_* environment, so it is made once per process for
    each of them and entered as `temporary_settings` would.
    """
    import prefect.context
    from prefect.settings import PREFECT_CLIENT_MAX_RETRIES

    context = prefect.context.get_settings_context()
    environment = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("PREFECT_")))
    key = (id(context.settings), retries, environment)
    with _settings_lock:
        found = _settings_copies.get(key)
    if found is None or found[0] is not context.settings:
        copy = context.settings.copy_with_update(updates={PREFECT_CLIENT_MAX_RETRIES: retries})
        with _settings_lock:
            if len(_settings_copies) > 32:  # settings or environments that came and went
                _settings_copies.clear()
            _settings_copies[key] = found = (context.settings, copy)
    with prefect.context.SettingsContext(profile=context.profile, settings=found[1]):
        yield


def describe(exc: BaseException) -> str:
    """One line saying what failed: `GET /api/x answered HTTP 401 (authentication …)`."""
    if isinstance(exc, httpx.HTTPStatusError):
        request, code = exc.request, exc.response.status_code
        answer = f"{request.method} {request.url.path} answered HTTP {code}"
        return f"{answer} ({AUTH_HINT})" if code in (401, 403) else answer
    text = one_line(str(exc)) or ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def one_line(text: str | None, limit: int = _MESSAGE_CHARS) -> str | None:
    if not text:
        return text
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def safe_url(url: str) -> str:
    """The URL without user info, query or fragment."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "<invalid URL>"
    host = parts.hostname or ""
    if ":" in host:  # IPv6
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _secret(value: Any) -> str | None:
    if value is None:
        return None
    getter = getattr(value, "get_secret_value", None)
    return (getter() if getter else str(value)) or None
