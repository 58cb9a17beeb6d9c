"""The delivery ledger: one row per (subscription, item version, recipient, channel).

    queued → sending → sent | failed          held → approved → sending → …
                                               held → discarded;  skipped (with why)

It lives in the item index's database (SQLite on one machine, PostgreSQL beyond), so
several workers share it. Each send is recorded before (`sending`, one more attempt)
and after (`sent` with the Message-ID, or `failed` with the server's words): a re-run
sends only rows that are not `sent`. The one window for a duplicate is a crash after
the server accepted the message and before `sent` was written: that row is still
`sending` and is sent again, once, with the same Message-ID.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select, update

from reports.index import ItemIndex
from reports.index._schema import deliveries

SENDABLE = ("queued", "approved", "sending", "failed")  # what a run (re)sends
FINAL = ("sent", "skipped", "discarded")


def delivery_id(subscription: str, item_id: str, fingerprint: str, recipient: str, channel: str):
    """Deterministic: the same version of the same item to the same recipient is one row."""
    text = "\x1f".join((subscription, item_id, fingerprint, recipient.casefold(), channel))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class LedgerRow:
    delivery_id: str
    subscription: str
    report: str
    item_id: str
    key: str
    fingerprint: str
    recipient: str
    channel: str
    status: str
    reason: str | None
    attempts: int
    last_error: str | None
    message_id: str | None
    run_id: str | None
    created_at: float
    updated_at: float
    sent_at: float | None
    decided_by: str | None


def _row(row) -> LedgerRow:
    return LedgerRow(**{name: getattr(row, name) for name in LedgerRow.__dataclass_fields__})


class Ledger:
    def __init__(self, index: ItemIndex) -> None:
        self.index = index

    # ---- writes ----------------------------------------------------------------------

    def plan(self, rows: Sequence[dict]) -> dict[str, LedgerRow]:
        """Add rows that are new (as given: queued, held or skipped); keep existing ones.

        Returns every row by id, as the ledger now holds it: an existing `sent` row
        stays sent, so planning the same delivery again never sends it twice.
        """
        now = time.time()
        fresh = [{"attempts": 0, "created_at": now, "updated_at": now, **row} for row in rows]
        with self.index.transaction() as connection:
            for start in range(0, len(fresh), 500):
                connection.execute(
                    self.index._upsert(deliveries).on_conflict_do_nothing(
                        index_elements=["delivery_id"]
                    ),
                    fresh[start : start + 500],
                )
        return self.get([row["delivery_id"] for row in rows])

    def sending(self, ids: Iterable[str], run_id: str | None) -> None:
        """Written before a send: one more attempt."""
        self._update(
            ids,
            status="sending",
            attempts=deliveries.c.attempts + 1,
            run_id=run_id,
        )

    def sent(self, ids: Iterable[str], message_id: str) -> None:
        self._update(
            ids, status="sent", message_id=message_id, last_error=None, sent_at=time.time()
        )

    def failed(self, ids: Iterable[str], error: str) -> None:
        self._update(ids, status="failed", last_error=error[:2000])

    def skip(self, ids: Iterable[str], reason: str) -> None:
        self._update(ids, status="skipped", reason=reason)

    def decide(self, ids: Iterable[str], approve: bool, who: str) -> int:
        """Approve (send on the next run) or discard held rows; returns how many changed."""
        listed = list(ids)
        with self.index.transaction() as connection:
            result = connection.execute(
                update(deliveries)
                .where(deliveries.c.delivery_id.in_(listed), deliveries.c.status == "held")
                .values(
                    status="approved" if approve else "discarded",
                    decided_by=who[:128],
                    updated_at=time.time(),
                )
            )
        return result.rowcount

    def _update(self, ids: Iterable[str], **values) -> None:
        listed = list(ids)
        if not listed:
            return
        with self.index.transaction() as connection:
            connection.execute(
                update(deliveries)
                .where(deliveries.c.delivery_id.in_(listed))
                .values(updated_at=time.time(), **values)
            )

    # ---- reads -----------------------------------------------------------------------

    def get(self, ids: Sequence[str]) -> dict[str, LedgerRow]:
        found: dict[str, LedgerRow] = {}
        with self.index.transaction() as connection:
            for start in range(0, len(ids), 500):
                rows = connection.execute(
                    select(deliveries).where(
                        deliveries.c.delivery_id.in_(list(ids[start : start + 500]))
                    )
                ).all()
                found.update((row.delivery_id, _row(row)) for row in rows)
        return found

    def last_sent(self, subscription: str, channel: str) -> dict[tuple[str, str], str]:
        """(item, recipient) → the fingerprint last sent to them on this subscription."""
        with self.index.transaction() as connection:
            rows = connection.execute(
                select(
                    deliveries.c.item_id,
                    deliveries.c.recipient,
                    deliveries.c.fingerprint,
                    deliveries.c.sent_at,
                )
                .where(
                    deliveries.c.subscription == subscription,
                    deliveries.c.channel == channel,
                    deliveries.c.status == "sent",
                )
                .order_by(deliveries.c.sent_at)
            ).all()
        return {(row.item_id, row.recipient.casefold()): row.fingerprint for row in rows}

    def rows(
        self,
        *,
        subscription: str | None = None,
        statuses: Sequence[str] = (),
        recipient: str | None = None,
        item: str | None = None,
        limit: int = 200,
        offset: int = 0,
    ) -> tuple[list[LedgerRow], int]:
        """Ledger rows, newest first, and how many match (recipient and item: substrings)."""
        conditions = []
        if subscription:
            conditions.append(deliveries.c.subscription == subscription)
        if statuses:
            conditions.append(deliveries.c.status.in_(list(statuses)))
        if recipient:
            conditions.append(
                func.lower(deliveries.c.recipient).contains(recipient.lower(), autoescape=True)
            )
        if item:
            conditions.append(
                func.lower(deliveries.c.item_id).contains(item.lower(), autoescape=True)
            )
        listing = select(deliveries).where(*conditions)
        with self.index.transaction() as connection:
            rows = connection.execute(
                listing.order_by(deliveries.c.updated_at.desc(), deliveries.c.delivery_id)
                .limit(limit)
                .offset(offset)
            ).all()
            total = connection.execute(
                select(func.count()).select_from(deliveries).where(*conditions)
            ).scalar_one()
        return [_row(row) for row in rows], total

    def counts(self) -> dict[str, dict[str, int]]:
        """subscription → status → rows."""
        with self.index.transaction() as connection:
            rows = connection.execute(
                select(deliveries.c.subscription, deliveries.c.status, func.count()).group_by(
                    deliveries.c.subscription, deliveries.c.status
                )
            ).all()
        counted: dict[str, dict[str, int]] = {}
        for subscription, status, count in rows:
            counted.setdefault(subscription, {})[status] = count
        return counted

    def last_activity(self) -> dict[str, float]:
        """subscription → when its ledger last changed."""
        with self.index.transaction() as connection:
            rows = connection.execute(
                select(deliveries.c.subscription, func.max(deliveries.c.updated_at)).group_by(
                    deliveries.c.subscription
                )
            ).all()
        return dict(rows)

    def requeue_failed(self, subscription: str) -> list[str]:
        """The failed rows of a subscription, made sendable again (resend failed)."""
        rows, _ = self.rows(subscription=subscription, statuses=("failed",), limit=100_000)
        ids = [row.delivery_id for row in rows]
        self._update(ids, status="queued")
        return ids
