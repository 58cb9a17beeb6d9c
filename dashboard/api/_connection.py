"""`connect()` for page scripts: `prefect_api.connect`, without its fixed cost per call.

Every `prefect_api.connect()` copies Prefect's whole settings object to lower the
client's retries (`temporary_settings`): pydantic re-reads the environment and the
.env files, about 30 ms of CPU on a 2-core machine, for every page refresh. The copy
depends only on the settings it was made from, the retries and the PREFECT_*
environment, so it is made once per process for each of them and entered as
`temporary_settings` would. Everything else — the checks, the one `Api` per use,
what is counted — is `prefect_api.connect`'s.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from prefect_api import Api, ApiConfig, ApiUnavailable

_lock = threading.Lock()
_copies: dict[tuple, tuple[Any, Any]] = {}  # key → (settings copied from, the copy)


@contextlib.contextmanager
def connect(config: ApiConfig | None = None) -> Iterator[Api]:
    """An `Api` for one page refresh; `ApiUnavailable` without a URL (as prefect_api's)."""
    config = config or ApiConfig.from_env()
    if not config.url:
        raise ApiUnavailable("Prefect API not configured: PREFECT_API_URL is not set")
    if urlsplit(config.url).scheme not in ("http", "https"):
        raise ApiUnavailable(f"PREFECT_API_URL is not an http(s) URL: {config.safe_url}")
    api = Api(config)
    with _client_settings(config.retries), api.client:
        yield api  # opening sends nothing; each query guards its own calls


@contextlib.contextmanager
def _client_settings(retries: int) -> Iterator[None]:
    """`temporary_settings(updates={PREFECT_CLIENT_MAX_RETRIES: retries})`, copied once."""
    import prefect.context
    from prefect.settings import PREFECT_CLIENT_MAX_RETRIES

    context = prefect.context.get_settings_context()
    environment = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("PREFECT_")))
    key = (id(context.settings), retries, environment)
    with _lock:
        found = _copies.get(key)
    if found is None or found[0] is not context.settings:
        copy = context.settings.copy_with_update(updates={PREFECT_CLIENT_MAX_RETRIES: retries})
        with _lock:
            if len(_copies) > 32:  # settings or environments that came and went
                _copies.clear()
            _copies[key] = found = (context.settings, copy)
    with prefect.context.SettingsContext(profile=context.profile, settings=found[1]):
        yield
