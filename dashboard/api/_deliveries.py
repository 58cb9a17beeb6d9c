"""The deliveries page's queries: subscriptions with their ledger counts, the ledger itself.

Subscriptions come from the YAML files in `deliveries/` plus any name that only the
ledger still knows (a subscription removed since it sent); counts, last activity
and rows come from the delivery ledger in the item index (`reports.delivery.Ledger`),
and whether each subscription is deployed from one Prefect API call. Ledger reads
raise `IndexUnavailable`, API reads `ApiUnavailable`, both with one-line messages.

    ledger = open_ledger()
    views, notes = subscription_views(get_settings().deliveries_dir, ledger, deployments)
    page = ledger_page(ledger, LedgerQuery(subscription="carrier-contacts", limit=50))
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from prefect_api import Api
from reports.contracts import DELIVER_FLOW, deployment_name
from reports.delivery import Ledger, LedgerRow, Subscription, subscriptions_in
from reports.errors import ReportError
from reports.index import item_id, open_index

# Every ledger status, in the order a reader looks for them: what needs attention first.
STATUSES = ("failed", "held", "queued", "approved", "sending", "sent", "skipped", "discarded")
STATUS_ICONS = {
    "failed": "❌",
    "held": "✋",
    "queued": "🕒",
    "approved": "👍",
    "sending": "📤",
    "sent": "✅",
    "skipped": "⏭️",
    "discarded": "🗑️",
}
WAITING = ("queued", "approved", "sending")  # sent by the subscription's next run
MAX_HELD = 10_000  # "approve all held" acts on at most this many rows at once
MAX_ITEM_ROWS = 1_000  # deliveries shown for one item


def status_label(status: str) -> str:
    """'✋ held': icon and word together, never colour alone."""
    return f"{STATUS_ICONS.get(status, '❔')} {status}"


def open_ledger() -> Ledger:
    """The delivery ledger in the item index (raises `IndexUnavailable`)."""
    return Ledger(open_index())


# ---- subscriptions ----------------------------------------------------------------------


@dataclass(frozen=True)
class DeliverDeployment:
    """A subscription's `deliver/<name>` deployment, as Prefect has it."""

    id: str
    name: str  # the subscription
    paused: bool
    schedules: int
    active_schedules: int

    @property
    def full_name(self) -> str:
        return deployment_name(DELIVER_FLOW, self.name)

    @property
    def label(self) -> str:
        """'▶️ scheduled', '🕒 on demand', '⏸️ paused': icon and words."""
        if self.paused:
            return "⏸️ paused"
        if self.active_schedules:
            return "▶️ scheduled"
        if self.schedules:
            return "🕒 schedule off"
        return "🕒 on demand"


def deliver_deployments(api: Api) -> dict[str, DeliverDeployment]:
    """Every `deliver/*` deployment by subscription name: one API call."""
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    with api.guard("the delivery deployments"):
        found = api.client.read_deployments(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[DELIVER_FLOW])), limit=200
        )
    return {
        d.name: DeliverDeployment(
            id=str(d.id),
            name=d.name,
            paused=bool(d.paused),
            schedules=len(d.schedules or []),
            active_schedules=sum(bool(s.active) for s in d.schedules or []),
        )
        for d in found
    }


@dataclass(frozen=True)
class SubscriptionView:
    name: str
    report: str
    channel: str
    schedule: str  # "cron 0 7 2 * * (America/New_York)" or "on demand"
    description: str
    declared: bool  # has a file in deliveries/ (else: known to the ledger only)
    counts: dict[str, int] = field(default_factory=dict)  # status → ledger rows
    last_activity: float | None = None  # epoch of the ledger's latest change
    deployment: DeliverDeployment | None = None
    deployments_known: bool = True  # False: the API did not answer

    def count(self, *statuses: str) -> int:
        return sum(self.counts.get(status, 0) for status in statuses)

    @property
    def deployment_label(self) -> str:
        if not self.deployments_known:
            return "❔ unknown (Prefect API down)"
        if self.deployment is None:
            return "⚠️ not deployed"
        return self.deployment.label


def schedule_text(subscription: Subscription) -> str:
    schedule = subscription.schedule
    if schedule is None:
        return "on demand"
    return f"cron {schedule.cron} ({schedule.timezone})"


def subscription_views(
    folder: Path,
    ledger: Ledger,
    deployments: Mapping[str, DeliverDeployment] | None,
) -> tuple[list[SubscriptionView], list[str]]:
    """Every subscription, declared or only in the ledger, by name; and notes to show.

    A broken subscription file is a note (its one-line message), not an error: the
    ledger's subscriptions are still listed. `deployments` None: the API is down.
    """
    notes: list[str] = []
    try:
        declared = subscriptions_in(folder)
    except ReportError as exc:
        declared = {}
        notes.append(f"Subscriptions in {folder} cannot be read: {exc}")
    counts = ledger.counts()
    activity = ledger.last_activity()
    known = deployments is not None
    views = []
    for name in sorted(set(declared) | set(counts)):
        subscription = declared.get(name)
        if subscription is not None:
            report, channel = subscription.report, subscription.channel.kind
            schedule, description = schedule_text(subscription), subscription.description
        else:  # removed from deliveries/ since it sent: what its latest row says
            latest, _ = ledger.rows(subscription=name, limit=1)
            report = latest[0].report if latest else "–"
            channel = latest[0].channel if latest else "–"
            schedule, description = "–", "no longer in deliveries/"
        views.append(
            SubscriptionView(
                name=name,
                report=report,
                channel=channel,
                schedule=schedule,
                description=description,
                declared=subscription is not None,
                counts=dict(counts.get(name, {})),
                last_activity=activity.get(name),
                deployment=(deployments or {}).get(name),
                deployments_known=known,
            )
        )
    return views, notes


# ---- the ledger -------------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerQuery:
    subscription: str | None = None
    statuses: tuple[str, ...] = ()
    recipient: str = ""  # a part of the address, case-insensitive
    item: str = ""  # a part of the item ("carrier=AA", "2013-07"), case-insensitive
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True)
class LedgerPage:
    rows: list[LedgerRow]
    total: int
    offset: int

    @property
    def has_next(self) -> bool:
        return self.offset + len(self.rows) < self.total


def ledger_page(ledger: Ledger, query: LedgerQuery) -> LedgerPage:
    """One page of ledger rows, newest first, and how many match: two queries."""
    rows, total = ledger.rows(
        subscription=query.subscription or None,
        statuses=query.statuses,
        recipient=query.recipient.strip() or None,
        item=query.item.strip() or None,
        limit=query.limit,
        offset=query.offset,
    )
    return LedgerPage(rows=rows, total=total, offset=query.offset)


def held_ids(ledger: Ledger, subscription: str) -> list[str]:
    """The ids of every held row of a subscription ("approve all held")."""
    rows, _ = ledger.rows(subscription=subscription, statuses=("held",), limit=MAX_HELD)
    return [row.delivery_id for row in rows]


def item_deliveries(ledger: Ledger, report: str, key: str) -> list[LedgerRow]:
    """Who received (or was to receive) which version of this one item, newest first.

    The ledger's item search matches a part of the id: rows of other items whose id
    contains this one are dropped here.
    """
    ident = item_id(report, key)
    rows, _ = ledger.rows(item=ident, limit=MAX_ITEM_ROWS)
    return [row for row in rows if row.item_id == ident]
