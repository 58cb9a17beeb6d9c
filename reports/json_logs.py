"""Log lines for machines: one JSON object per line, secrets redacted.

With `REPORTRUNNER_LOG_FORMAT=json`, the CLI and every flow-run process replace the
console handler on the root logger with one that writes JSON lines to stderr:

    {"time": "…", "level": "INFO", "logger": "reportrunner.items", "message": "…",
     "flow_run_id": "…", "report": "carrier-monthly", "item": "carrier=AA month=2013-07",
     "status": "rendered", "stage": "render", "duration_s": 0.52}

Fields a record does not carry are left out. Known secrets (the values of the
environment variables below, and passwords in URLs) never leave in any field: log
shippers keep everything they are given.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import sys

FIELDS = (
    "flow_run_id",
    "flow_run_name",
    "task_run_id",
    "task_run_name",
    "run_id",
    "batch_id",
    "report",
    "item",
    "status",
    "stage",
    "duration_s",
    "subscription",
    "recipient",
)
SECRET_VARIABLES = (
    "PREFECT_API_AUTH_STRING",
    "PREFECT_API_KEY",
    "REPORTRUNNER_SMTP_PASSWORD",
    "REPORTRUNNER_FAILURE_WEBHOOK_URL",
    "REPORTRUNNER_DASHBOARD_SECRET",
    "REPORTRUNNER_DASHBOARD_USERS",
)
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]+):[^@/\s]+@", re.I)


def _secrets() -> list[str]:
    values = [os.environ.get(name, "") for name in SECRET_VARIABLES]
    # A webhook URL's path is its secret; an auth string's password part on its own too.
    parts = [value.split(":", 1)[1] for value in values if ":" in value and "//" not in value]
    return sorted({v for v in values + parts if len(v) >= 6}, key=len, reverse=True)


def redact(text: str, secrets: list[str] | None = None) -> str:
    for secret in _secrets() if secrets is None else secrets:
        text = text.replace(secret, "***")
    return _URL_PASSWORD.sub(r"\g<scheme>\g<user>:***@", text)


class JsonLines(logging.Formatter):
    def __init__(self) -> None:
        super().__init__()
        self._secrets = _secrets()

    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage(), self._secrets),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                data[name] = redact(str(value), self._secrets) if isinstance(value, str) else value
        if record.exc_info:
            data["error"] = redact(self.formatException(record.exc_info), self._secrets)
        return json.dumps(data, default=str)


def json_logs_wanted() -> bool:
    return os.environ.get("REPORTRUNNER_LOG_FORMAT", "text").strip().lower() == "json"


def use_json_logs(level: int = logging.INFO) -> None:
    """Replace the root logger's console output with JSON lines (idempotent)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_reportrunner_json", False):
            return
        if isinstance(handler, logging.StreamHandler) and not isinstance(
            handler, logging.FileHandler
        ):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines())
    handler._reportrunner_json = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    logging.getLogger("reportrunner").setLevel(level)
