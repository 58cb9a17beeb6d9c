"""Subscriptions: who receives which report, how, when and on what conditions.

Data engineers declare them in the repository, one YAML file each under
`deliveries/`, reviewed like reports; `reportrunner deploy` turns each into a
`deliver/<name>` deployment with its schedule. Example:

    name: carrier-contacts
    report: carrier-monthly
    parameters: {month: previous}        # shared by every recipient; relative values allowed
    recipients:
      csv: recipients/carrier-contacts.csv   # beside this file, or in the data folder
      address: email                     # the column with the address (default: address)
      name: name                         # the column with a display name (optional)
      # each other column named like a report parameter is that recipient's value:
      # carrier=AA → the AA PDF only ("bursting")
    channel: {kind: email, attach: true}
    schedule: {cron: "0 7 2 * *", timezone: America/New_York, active: false}
    trigger: after-batch                 # and/or: deliver when a batch of the report ends
    conditions: {send_if_changed: true, skip_empty: true, digest: false,
                 hold: {quality: true, pages_factor: 3.0}}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from reports.contracts import REPORT_NAME_PATTERN
from reports.errors import SpecError
from reports.spec import yaml_error


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Recipients(_Strict):
    """Where the recipients come from: a CSV file, a SQL query, or a fixed list."""

    csv: str | None = None
    sql: str | None = None
    list: tuple[dict[str, Any], ...] | None = None
    address: str = "address"  # the column (or key) holding the address
    name: str | None = None  # the column holding a display name

    @model_validator(mode="after")
    def _exactly_one_source(self) -> Recipients:
        given = [k for k in ("csv", "sql", "list") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("recipients: give exactly one of csv, sql or list")
        return self


class Channel(_Strict):
    kind: Literal["email", "webhook", "archive"]
    attach: bool = True  # email: attach the PDF (else only link it)
    url_env: str | None = None  # webhook: the environment variable holding its URL (a secret)
    url: str | None = None  # archive: the fsspec folder to copy into

    @model_validator(mode="after")
    def _options(self) -> Channel:
        if self.kind == "webhook" and not self.url_env:
            raise ValueError("channel: a webhook needs url_env, the variable holding its URL")
        if self.kind == "archive" and not self.url:
            raise ValueError("channel: an archive needs url, the folder to copy into")
        return self


class Schedule(_Strict):
    cron: str
    timezone: str = "UTC"
    active: bool = False  # `reportrunner deploy --schedules on` switches schedules on


class Hold(_Strict):
    """Hold an item for an operator instead of sending it."""

    quality: bool = True  # its quality gate warned
    pages_factor: float | None = Field(default=3.0, gt=1)  # pages beyond ×/÷ this of usual


class Conditions(_Strict):
    send_if_changed: bool = True  # skip what this recipient already has in this version
    skip_empty: bool = True  # skip items whose data had no rows
    digest: bool = False  # one message per recipient with all their items
    hold: Hold = Hold()


class Subscription(_Strict):
    name: str = Field(pattern=f"^{REPORT_NAME_PATTERN}$", max_length=64)
    report: str = Field(pattern=f"^{REPORT_NAME_PATTERN}$")
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=dict)
    recipients: Recipients
    channel: Channel
    schedule: Schedule | None = None
    # "after-batch": also deliver whenever a batch of the report ends (an automation).
    trigger: Literal["after-batch"] | None = None
    conditions: Conditions = Conditions()
    subject: str = "{{ title }}: {{ item_label }}"
    # Resolve relative parameters as if the run's date were in this year (demo data: 2013).
    as_of_year: int | None = Field(default=None, ge=1900, le=2200)
    folder: Path | None = Field(default=None, exclude=True)  # where the file lives


def load_subscription(path: Path) -> Subscription:
    """One subscription file, checked; a mistake is one line naming the file and the field."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise SpecError(f"{path.name}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise SpecError(yaml_error(path, exc)) from None
    if not isinstance(data, dict):
        raise SpecError(f"{path.name}: expected a mapping of subscription fields")
    try:
        return Subscription(**data, folder=path.parent)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"]) or "subscription"
        raise SpecError(f"{path.name}: {where}: {error['msg']}") from None


def subscriptions_in(folder: Path) -> dict[str, Subscription]:
    """Every `*.yaml` in `folder`, by name; two with one name is an error."""
    found: dict[str, Subscription] = {}
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        subscription = load_subscription(path)
        if subscription.name in found:
            raise SpecError(f"{path.name}: a second subscription named '{subscription.name}'")
        found[subscription.name] = subscription
    return found


def get_subscription(folder: Path, name: str) -> Subscription:
    known = subscriptions_in(folder)
    if name not in known:
        listed = ", ".join(sorted(known)) or "none"
        raise SpecError(f"unknown subscription '{name}'; subscriptions: {listed}")
    return known[name]
