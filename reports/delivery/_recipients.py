"""Bursting: each recipient, with the report parameters that are theirs.

A recipient row's columns named like the report's parameters are that recipient's
values (carrier=AA: only AA's PDFs); the subscription's `parameters` fill in the
rest for everyone. A recipient may appear on several rows (two carriers for one
contact): they get each of their items.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from reports.definitions import Report
from reports.delivery._subscription import Subscription
from reports.errors import SpecError
from reports.settings import get_settings

_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


@dataclass(frozen=True)
class Recipient:
    address: str
    name: str | None
    params: dict[str, Any] = field(default_factory=dict)  # their own parameter values


def _table(subscription: Subscription, report: Report) -> pd.DataFrame:
    source = subscription.recipients
    if source.list is not None:
        return pd.DataFrame(list(source.list))
    if source.csv is not None:
        return pd.read_csv(_csv_path(subscription, source.csv), dtype=str, keep_default_na=False)
    if report.spec.source != "sql":
        raise SpecError(
            f"{subscription.name}: recipients.sql needs a report with an SQL source; "
            f"'{report.name}' reads files: use recipients.csv"
        )
    return report.source().query(source.sql).astype(str)


def _csv_path(subscription: Subscription, name: str) -> Path:
    """Beside the subscription file, else in the data folder; never outside either."""
    roots = [r for r in (subscription.folder, get_settings().resolved_data_dir) if r]
    for root in roots:
        path = (root / name).resolve()
        if path.is_relative_to(root.resolve()) and path.is_file():
            return path
    raise SpecError(f"{subscription.name}: recipients file '{name}' not found")


def resolve_recipients(subscription: Subscription, report: Report) -> list[Recipient]:
    """Every recipient with their parameters; a bad row is one line naming it."""
    table = _table(subscription, report)
    source = subscription.recipients
    if source.address not in table.columns:
        raise SpecError(f"{subscription.name}: recipients have no '{source.address}' column")
    own = [c for c in table.columns if c in report.spec.parameters]
    recipients = []
    for number, row in enumerate(table.to_dict("records"), start=1):
        address = str(row[source.address]).strip()
        if subscription.channel.kind == "email" and not _ADDRESS.match(address):
            raise SpecError(f"{subscription.name}: recipient row {number}: bad address {address!r}")
        if not address:
            raise SpecError(f"{subscription.name}: recipient row {number} has no address")
        name = str(row[source.name]).strip() if source.name and row.get(source.name) else None
        recipients.append(
            Recipient(address, name, {c: row[c] for c in own if str(row[c]).strip() != ""})
        )
    return recipients
