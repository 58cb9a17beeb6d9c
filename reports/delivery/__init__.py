"""Delivery: subscriptions that send each recipient their own reports, with a ledger.

    subscription = get_subscription(settings.deliveries_dir, "carrier-contacts")
    recipients = resolve_recipients(subscription, report)          # bursting
    plan = plan_deliveries(subscription, report, recipients, fixed, store, ledger)
    counts = send_planned(subscription, report, plan, make_channel(subscription), store, ledger)

The delivery flow (`flows/delivery_flow.py`) renders what is missing first and runs
these in Prefect; channels (email, webhook, archive) are in their own modules.
"""

from reports.delivery._channels import make_channel
from reports.delivery._deliver import (
    DeliveryCounts,
    Planned,
    item_page,
    plan_deliveries,
    send_planned,
)
from reports.delivery._envelope import Attachment, Channel, Envelope, SendError
from reports.delivery._ledger import FINAL, SENDABLE, Ledger, LedgerRow, delivery_id
from reports.delivery._recipients import Recipient, resolve_recipients
from reports.delivery._subscription import (
    Subscription,
    get_subscription,
    load_subscription,
    subscriptions_in,
)

__all__ = [
    "FINAL",
    "SENDABLE",
    "Attachment",
    "Channel",
    "DeliveryCounts",
    "Envelope",
    "Ledger",
    "LedgerRow",
    "Planned",
    "Recipient",
    "SendError",
    "Subscription",
    "delivery_id",
    "get_subscription",
    "item_page",
    "load_subscription",
    "make_channel",
    "plan_deliveries",
    "resolve_recipients",
    "send_planned",
    "subscriptions_in",
]
