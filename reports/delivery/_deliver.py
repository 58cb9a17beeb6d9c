"""Who gets what (the plan), then sending it with the ledger written around every send.

    plan_deliveries  recipients × their items → ledger rows: queued, held or skipped
    send_planned     every sendable row → one message each (or one per recipient: digest),
                     transient errors retried with backoff, permanent ones failed at once

Plain Python: the delivery flow runs this in a Prefect task, `reportrunner deliver`
the same way, and the tests directly.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from reports.contracts import ItemKey, item_key
from reports.definitions import Report
from reports.delivery._envelope import Attachment, Channel, Envelope, SendError
from reports.delivery._ledger import SENDABLE, Ledger, LedgerRow, delivery_id
from reports.delivery._messages import MessageItem, bodies, subject
from reports.delivery._recipients import Recipient
from reports.delivery._subscription import Subscription
from reports.errors import ReportError
from reports.index import earlier_pages, item_id
from reports.settings import get_settings
from reports.store import OutputStore

RETRIES = 3  # after the first attempt, for transient errors
BACKOFF_S = (1.0, 3.0, 9.0)


@dataclass(frozen=True)
class Planned:
    """One (recipient, item) of a delivery run and what the ledger says of it."""

    row: LedgerRow
    recipient: Recipient
    params: dict[str, Any]
    manifest: dict[str, Any] | None


@dataclass
class DeliveryCounts:
    total: int = 0
    sent: int = 0
    failed: int = 0
    held: int = 0
    skipped: int = 0
    already: int = 0  # sent by an earlier run

    def sentence(self) -> str:
        text = f"{self.sent + self.already} of {self.total} sent, {self.failed} failed, "
        text += f"{self.held} held"
        return text + (f", {self.skipped} skipped" if self.skipped else "")


def _label(params: dict[str, Any]) -> str:
    return ItemKey.of(params).label


def _hold_reason(
    subscription: Subscription, manifest: dict[str, Any], earlier: list[tuple[str | None, int]]
) -> str | None:
    """Why this output must wait for an operator, or None. `earlier`: (fingerprint, pages)
    of the item's recent renders."""
    hold = subscription.conditions.hold
    quality = manifest.get("quality") or {}
    if hold.quality and quality.get("status") not in (None, "ok"):
        return "quality gate: " + "; ".join(quality.get("issues") or [quality["status"]])
    pages = manifest.get("pages")
    if hold.pages_factor and pages:
        usual = [p for fp, p in earlier if fp != manifest.get("fingerprint")]
        if len(usual) >= 2:
            typical = statistics.median(usual)
            if pages > typical * hold.pages_factor or pages < typical / hold.pages_factor:
                return f"{pages} pages, far from its usual {typical:g}"
    return None


@dataclass(frozen=True)
class _Decision:
    version: str  # what identifies the send: the outputs' fingerprint (or "unrendered")
    status: str
    reason: str | None = None
    error: str | None = None
    manifest: dict[str, Any] | None = None


def _decide(
    subscription, report, raw, ident, recipient, store, write, run_id, last_sent, earlier
) -> _Decision:
    """What to do about one recipient's item: queue, hold, skip, or fail with why."""
    try:
        params = report.validate(raw)
    except ReportError as exc:
        return _Decision("-", "failed", error=str(exc))
    manifest = store.read_manifest(store.item_dir(report.name, params))
    if not manifest or not manifest.get("files"):
        if not write:  # a dry run renders nothing: a real run renders the item first
            return _Decision("unrendered", "queued", "not rendered yet: the run renders it first")
        return _Decision(
            "unrendered", "failed", error="no outputs: the report did not render (see the item)"
        )
    fingerprint = manifest["fingerprint"]
    conditions = subscription.conditions
    # Without send-if-changed every run is a new send: the run is part of its identity.
    version = fingerprint if conditions.send_if_changed else f"{fingerprint}:{run_id}"
    rows_total = sum((manifest.get("rows") or {}).values())
    if conditions.skip_empty and manifest.get("rows") and rows_total == 0:
        return _Decision(version, "skipped", "empty report: its data had no rows", None, manifest)
    if (
        conditions.send_if_changed
        and last_sent.get((ident, recipient.address.casefold())) == fingerprint
    ):
        return _Decision(version, "skipped", "unchanged since it was last sent", None, manifest)
    if reason := _hold_reason(subscription, manifest, earlier):
        return _Decision(version, "held", reason, None, manifest)
    return _Decision(version, "queued", None, None, manifest)


def plan_deliveries(
    subscription: Subscription,
    report: Report,
    recipients: list[Recipient],
    fixed: dict[str, Any],
    store: OutputStore,
    ledger: Ledger,
    *,
    run_id: str | None = None,
    write: bool = True,
) -> list[Planned]:
    """Each recipient's items, checked against their outputs, the conditions and the ledger.

    `write=False` (a dry run) computes the same plan without touching the ledger.
    """
    channel = subscription.channel.kind
    last_sent = ledger.last_sent(subscription.name, channel)
    wanted = [(r, report.in_spec_order({**fixed, **r.params})) for r in recipients]
    history = earlier_pages(ledger.index, report.name, list({item_key(raw) for _, raw in wanted}))
    rows, context = [], []
    for recipient, raw in wanted:
        key = item_key(raw)
        ident = item_id(report.name, key)
        decision = _decide(
            subscription,
            report,
            raw,
            ident,
            recipient,
            store,
            write,
            run_id,
            last_sent,
            history.get(key, []),
        )
        rows.append(
            {
                "delivery_id": delivery_id(
                    subscription.name, ident, decision.version, recipient.address, channel
                ),
                "subscription": subscription.name,
                "report": report.name,
                "item_id": ident,
                "key": key,
                "fingerprint": decision.version.split(":")[0],
                "recipient": recipient.address,
                "channel": channel,
                "status": decision.status,
                "reason": decision.reason,
                "last_error": decision.error,
                "run_id": run_id,
            }
        )
        context.append((recipient, raw, decision.manifest))
    if write:
        stored = ledger.plan(rows)
    else:
        existing = ledger.get([r["delivery_id"] for r in rows])
        stored = {r["delivery_id"]: existing.get(r["delivery_id"]) or _as_row(r) for r in rows}
    return [
        Planned(stored[row["delivery_id"]], recipient, raw, manifest)
        for row, (recipient, raw, manifest) in zip(rows, context, strict=True)
    ]


def _as_row(row: dict[str, Any]) -> LedgerRow:
    now = time.time()
    return LedgerRow(
        **{
            "attempts": 0,
            "message_id": None,
            "created_at": now,
            "updated_at": now,
            "sent_at": None,
            "decided_by": None,
            **row,
        }
    )


# ---- sending -----------------------------------------------------------------------------


@dataclass
class _Message:
    recipient: Recipient
    planned: list[Planned] = field(default_factory=list)


def item_page(report: str, key: str) -> str:
    base = get_settings().dashboard_url.rstrip("/")
    return f"{base}/item?" + urlencode({"report": report, "key": key})


def _envelope(
    subscription: Subscription, report: Report, message: _Message, store: OutputStore
) -> Envelope:
    items, attachments = [], []
    for planned in message.planned:
        manifest = planned.manifest or {}
        items.append(
            MessageItem(
                title=report.spec.title,
                label=_label(planned.params),
                pages=manifest.get("pages"),
                link=item_page(report.name, planned.row.key),
            )
        )
        for entry in manifest.get("files", []):
            if entry["name"].endswith(".pdf"):
                attachments.append(Attachment(entry["name"], store.read_bytes(entry["path"])))
    text, html = bodies(subscription.name, message.recipient.name, items)
    ids = sorted(p.row.delivery_id for p in message.planned)
    return Envelope(
        delivery_id=ids[0]
        if len(ids) == 1
        else delivery_id(
            subscription.name, "digest", ",".join(ids), message.recipient.address, "digest"
        ),
        subscription=subscription.name,
        recipient=message.recipient.address,
        recipient_name=message.recipient.name,
        subject=subject(subscription.subject, subscription.name, items),
        text=text,
        html=html,
        attachments=tuple(attachments),
        links=tuple(item.link for item in items if item.link),
    )


def send_planned(
    subscription: Subscription,
    report: Report,
    plan: list[Planned],
    channel: Channel,
    store: OutputStore,
    ledger: Ledger,
    *,
    run_id: str | None = None,
    on_progress: Callable[[DeliveryCounts], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> DeliveryCounts:
    """Send every sendable planned row; the ledger is written before and after each send."""
    counts = DeliveryCounts(total=len(plan))
    messages: dict[str, _Message] = {}
    for planned in plan:
        status = planned.row.status
        if status == "sent":
            counts.already += 1
        elif status in ("held",):
            counts.held += 1
        elif status in ("skipped", "discarded"):
            counts.skipped += 1
        elif status == "failed" and planned.manifest is None:
            counts.failed += 1  # nothing to send: its report did not render
        elif status in SENDABLE:
            group = (
                planned.recipient.address
                if subscription.conditions.digest
                else (planned.row.delivery_id)
            )
            messages.setdefault(group, _Message(planned.recipient)).planned.append(planned)
    if on_progress:
        on_progress(counts)
    for message in messages.values():
        ids = [p.row.delivery_id for p in message.planned]
        try:
            envelope = _envelope(subscription, report, message, store)
        except (ReportError, OSError) as exc:
            ledger.failed(ids, f"could not build the message: {exc}")
            counts.failed += len(ids)
            continue
        outcome = _send_with_retries(channel, envelope, ledger, ids, run_id, sleep)
        if outcome is None:
            counts.failed += len(ids)
        else:
            counts.sent += len(ids)
        if on_progress:
            on_progress(counts)
    return counts


def _send_with_retries(channel, envelope, ledger, ids, run_id, sleep) -> str | None:
    for attempt in range(RETRIES + 1):
        ledger.sending(ids, run_id)  # before: a crash from here on may resend, once
        try:
            reference = channel.send(envelope)
        except SendError as exc:
            if not exc.transient or attempt == RETRIES:
                ledger.failed(ids, str(exc))
                return None
            ledger.failed(ids, f"{exc} (retrying)")
            sleep(BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)])
            continue
        ledger.sent(ids, reference)
        return reference
    return None
