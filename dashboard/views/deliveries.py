"""Deliveries: each subscription's counts, the delivery ledger, and the operator's decisions.

Subscriptions are the YAML files in `deliveries/` (plus any the ledger still knows);
the ledger lists who was sent which version of which item, newest first, searchable
by recipient and item. Operators resend a subscription's failed deliveries and
approve or discard held ones, each after a confirmation that says what and how
many; `dashboard.actions` checks the role and writes the audit entry. Approving does
not send: the subscription's next run does, and the page offers to start it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import actions, auth, components
from dashboard.api import ApiConfig, ApiUnavailable, connect
from dashboard.api._deliveries import (
    STATUSES,
    WAITING,
    LedgerPage,
    LedgerQuery,
    SubscriptionView,
    deliver_deployments,
    held_ids,
    ledger_page,
    open_ledger,
    status_label,
    subscription_views,
)
from dashboard.api._items import age, item_link, when
from dashboard.components import shared
from dashboard.formatting import clock
from reports import get_settings
from reports.contracts import DELIVER_FLOW, deployment_name
from reports.delivery import Ledger, LedgerRow
from reports.index import IndexUnavailable

PAGE_SIZE = 50
_PENDING = "deliveries_pending"  # {"kind", "subscription", "ids", "question"}, per user
_OFFER = "deliveries_offer"  # subscriptions whose approved rows wait for a run, per user
_RESULT = "deliveries_result"  # (ok, message) of the last action, shown once
_SUBSCRIPTION = "deliveries_subscription"
_PAGE_NO = "deliveries_page_no"
_SEEN = "deliveries_filters_seen"
_GENERATION = "deliveries_table_generation"  # a new table key drops the selection
COUNTED = ("sent", "failed", "held", "skipped")  # the tiles, and the table's count columns
DECISIONS = (  # kind, button, verb in the question, what follows
    ("approve", "👍 Approve", "Approve", "approved: sent on the subscription's next run"),
    ("discard", "🗑️ Discard", "Discard", "discarded: this version is never sent to them"),
)
TILE_HELP = {
    "sent": "Delivered: the channel accepted the message.",
    "failed": "The send failed (the error is in the ledger); the next run tries again.",
    "held": "Waiting for an operator to approve or discard (quality gate, odd page count).",
    "skipped": "Not sent on purpose: unchanged since last sent, or an empty report.",
}

user = auth.current_user()
st.title("Deliveries")
if not user.is_operator:
    st.caption(
        "Resending failed deliveries and approving or discarding held ones need the "
        f"operator role; you are an {user.role}."
    )


def _ask(kind: str, question: str, subscription: str | None, ids: Sequence[str] = ()) -> None:
    auth.ask(
        _PENDING,
        {"kind": kind, "subscription": subscription, "ids": list(ids), "question": question},
    )
    st.rerun()  # the confirmation is drawn at the top of the page


def _act(pending: dict) -> actions.ActionResult:
    kind, subscription, ids = pending["kind"], pending["subscription"], pending["ids"]
    try:
        with connect() as api:
            if kind == "approve":
                return actions.approve_held(api, user, ids, subscription)
            if kind == "discard":
                return actions.discard_held(api, user, ids, subscription)
            if kind == "resend":
                return actions.resend_failed(api, user, subscription)
            return actions.start_delivery(api, user, subscription)
    finally:
        shared.forget()  # every page shows what the action changed


def _confirmation() -> None:
    pending = auth.pending(_PENDING)
    if not pending:
        return
    with st.container(border=True):
        st.warning(pending["question"], icon="❓")
        yes, no, _ = st.columns([1, 1, 4])
        if yes.button("Confirm", key="deliveries_confirm", type="primary", help="Do it now."):
            auth.forget(_PENDING)
            try:
                result = _act(pending)
            except ApiUnavailable as exc:
                result = actions.ActionResult(False, str(exc))
            st.session_state[_RESULT] = (result.ok, result.message)
            st.session_state[_GENERATION] = st.session_state.get(_GENERATION, 0) + 1
            if result.ok and pending["kind"] == "approve":
                auth.ask(_OFFER, pending.get("offer") or [pending["subscription"]])
            st.rerun()
        if no.button(
            "Keep as is", key="deliveries_keep", help="Close this question; nothing changes."
        ):
            auth.forget(_PENDING)
            st.rerun()


def _offer() -> None:
    """After an approval: the rows wait for the next run; offer to start it now."""
    offered = [s for s in auth.pending(_OFFER) or [] if s]
    if not offered or not user.is_operator:
        return
    with st.container(border=True):
        st.info(
            "Approved deliveries are sent on the subscription's next run, not before.",
            icon="👍",
        )
        cols = st.columns(len(offered) + 1)
        for col, name in zip(cols, offered, strict=False):
            full = deployment_name(DELIVER_FLOW, name)
            if col.button(
                f"▶️ Start {full} now",
                key=f"deliveries_run_{name}",
                help="Start a run of the subscription's deployment; a worker picks it up.",
            ):
                auth.forget(_OFFER)
                _ask(
                    "run",
                    f"Start a run of '{full}' now? It sends every delivery of '{name}' not yet "
                    "sent (queued, approved or failed) and plans any new ones.",
                    name,
                )
        if cols[-1].button(
            "Later", key="deliveries_offer_close", help="Leave them for the scheduled run."
        ):
            auth.forget(_OFFER)
            st.rerun()


# ---- subscriptions ----------------------------------------------------------------------


def _subscriptions_table(views: list[SubscriptionView]) -> None:
    st.subheader("Subscriptions")
    if not views:
        st.caption(
            "No subscription yet: add a YAML file to deliveries/ and run `reportrunner deploy`."
        )
        return
    frame = pd.DataFrame(
        [
            {
                "Subscription": v.name,
                "Report": v.report,
                "Channel": v.channel,
                "Schedule": v.schedule,
                "Deployment": v.deployment_label,
                "Last activity": (
                    f"{clock(when(v.last_activity))} ({age(v.last_activity)})"
                    if v.last_activity
                    else "–"
                ),
                **{status_label(s): v.count(s) for s in COUNTED},
                "🕒 to send": v.count(*WAITING),
                "🗑️ discarded": v.count("discarded"),
                "Note": v.description if not v.declared else "",
            }
            for v in views
        ]
    )
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        key="deliveries_subscriptions",
        column_config={
            "Schedule": st.column_config.TextColumn(width="medium"),
            "Deployment": st.column_config.TextColumn(
                help=f"The subscription's {DELIVER_FLOW}/<name> deployment in Prefect."
            ),
            "🕒 to send": st.column_config.NumberColumn(
                help="Queued, approved or being sent: the next run sends them."
            ),
        },
    )


def _subscription_card(view: SubscriptionView, ledger: Ledger) -> None:
    """The chosen subscription: its tiles and, for operators, its controls."""
    with st.container(border=True):
        facts = [
            f"**{view.name}**",
            f"report {view.report}",
            f"channel {view.channel}",
            view.schedule,
            f"deployment {view.deployment_label}",
            f"last activity {age(view.last_activity)}",
        ]
        st.markdown(" · ".join(facts))
        if view.description:
            st.caption(view.description)
        tiles = st.columns(len(COUNTED) + 1)
        for tile, status in zip(tiles, COUNTED, strict=False):
            tile.metric(status_label(status), f"{view.count(status):,}", help=TILE_HELP[status])
        tiles[-1].metric(
            "🕒 to send",
            f"{view.count(*WAITING):,}",
            help="Queued, approved or being sent: the subscription's next run sends them.",
        )
        if user.is_operator:
            _subscription_controls(view, ledger)


def _subscription_controls(view: SubscriptionView, ledger: Ledger) -> None:
    failed, held = view.count("failed"), view.count("held")
    resend, approve, discard, _ = st.columns([2, 2, 2, 3])
    if resend.button(
        f"🔁 Resend {failed} failed",
        key="deliveries_resend",
        disabled=not failed,
        help="Queue the failed deliveries again and start a run of the subscription.",
    ):
        _ask(
            "resend",
            f"Resend {failed} failed delivery(ies) of '{view.name}'? They are queued again "
            f"and a run of '{deployment_name(DELIVER_FLOW, view.name)}' is started.",
            view.name,
        )
    for col, (kind, label, word, outcome) in zip((approve, discard), DECISIONS, strict=True):
        if col.button(
            f"{label} all {held} held",
            key=f"deliveries_{kind}_all",
            disabled=not held,
            help=f"Every held delivery of this subscription is {outcome}.",
        ):
            try:
                ids = held_ids(ledger, view.name)
            except IndexUnavailable as exc:
                components.api_banner(str(exc))
                return
            _ask(
                kind,
                f"{word} all {len(ids)} held delivery(ies) of '{view.name}'? They are {outcome}.",
                view.name,
                ids,
            )


# ---- the ledger -------------------------------------------------------------------------


def _filters(views: list[SubscriptionView]) -> LedgerQuery:
    names = [v.name for v in views]
    preset = st.query_params.get("subscription")
    if _SUBSCRIPTION not in st.session_state:  # first visit: the link's subscription
        st.session_state[_SUBSCRIPTION] = preset if preset in names else None
    elif st.session_state[_SUBSCRIPTION] not in [None, *names]:  # gone since it was chosen
        st.session_state[_SUBSCRIPTION] = None
    left, middle, right = st.columns([2, 2, 3])
    subscription = left.selectbox(
        "Subscription",
        [None, *names],
        format_func=lambda name: "every subscription" if name is None else name,
        key=_SUBSCRIPTION,
        help="One subscription's ledger, with its counts and controls.",
    )
    statuses = middle.multiselect(
        "Status",
        STATUSES,
        format_func=status_label,
        key="deliveries_status",
        help="failed: the send failed; held: waits for an operator; approved: sent on the "
        "next run; skipped: not sent on purpose (unchanged, empty).",
    )
    recipient = right.text_input(
        "Recipient",
        key="deliveries_recipient",
        placeholder="ops@airline.example",
        help="A part of the recipient's address, case-insensitive.",
    )
    item = st.text_input(
        "Item",
        key="deliveries_item",
        placeholder="carrier=AA month=2013-07",
        help="A part of the item: report name or business key, case-insensitive.",
    )
    query = LedgerQuery(
        subscription=subscription,
        statuses=tuple(statuses),
        recipient=recipient.strip(),
        item=item.strip(),
        limit=PAGE_SIZE,
    )
    if st.session_state.get(_SEEN) != query:  # new filters: back to page 1
        st.session_state[_SEEN] = query
        st.session_state[_PAGE_NO] = 0
    return query


def _why(row: LedgerRow) -> str:
    """The error of a failed send, else why it was held or skipped."""
    if row.status in ("failed", "sending", "queued") and row.last_error:
        return row.last_error
    return row.reason or row.last_error or ""


def _ledger_frame(rows: list[LedgerRow]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "When": [clock(when(r.updated_at)) for r in rows],
            "Status": [status_label(r.status) for r in rows],
            "Recipient": [r.recipient for r in rows],
            "Item": [r.key for r in rows],
            "Error / reason": [_why(r) for r in rows],
            "Subscription": [r.subscription for r in rows],
            "Report": [r.report for r in rows],
            "Channel": [r.channel for r in rows],
            "Attempts": [r.attempts for r in rows],
            "Sent": [clock(when(r.sent_at)) for r in rows],
            "Fingerprint": [r.fingerprint[:10] for r in rows],
            "Decided by": [r.decided_by or "" for r in rows],
            "Open": [item_link(r.report, r.key) for r in rows],
        }
    )


def _turn(step: int) -> None:
    st.session_state[_PAGE_NO] = max(0, st.session_state.get(_PAGE_NO, 0) + step)


def _ledger_table(page: LedgerPage) -> list[LedgerRow]:
    """The page of rows; operators select rows to act on. Returns the selected rows."""
    if not page.rows:
        st.info("No deliveries match these filters.")
        return []
    first = page.offset + 1
    st.markdown(f"**Deliveries {first:,}–{page.offset + len(page.rows):,} of {page.total:,}**")
    options: dict[str, Any] = {}
    if user.is_operator:
        options = {"on_select": "rerun", "selection_mode": "multi-row"}
    event = st.dataframe(
        _ledger_frame(page.rows),
        hide_index=True,
        width="stretch",
        key=f"deliveries_table_{st.session_state.get(_GENERATION, 0)}",
        column_config={
            "Status": st.column_config.TextColumn(width="small"),
            "Error / reason": st.column_config.TextColumn(
                width="large",
                help="The channel's error of a failed send, or why it was held "
                "or skipped. Click a cell to read all of it.",
            ),
            "Open": st.column_config.LinkColumn(display_text="open item", width="small"),
        },
        **options,
    )
    if not user.is_operator:
        return []
    chosen = getattr(getattr(event, "selection", None), "rows", None) or []
    return [page.rows[i] for i in chosen if i < len(page.rows)]


def _selection_bar(selected: list[LedgerRow]) -> None:
    """Approve or discard the held rows among the selected ones."""
    if not user.is_operator:
        return
    held = [r for r in selected if r.status == "held"]
    if not selected:
        st.caption("Select held rows to approve or discard them.")
        return
    names = sorted({r.subscription for r in held})
    subscription = names[0] if len(names) == 1 else None
    of = f" of '{subscription}'" if subscription else ""
    shown = "; ".join(f"{r.recipient}: {r.key}" for r in held[:3])
    shown += f"; and {len(held) - 3} more" if len(held) > 3 else ""
    skipped = len(selected) - len(held)
    rest = f" {skipped} selected row(s) are not held and are left alone." if skipped else ""
    approve, discard, _ = st.columns([2, 2, 3])
    for col, (kind, label, word, outcome) in zip((approve, discard), DECISIONS, strict=True):
        if col.button(
            f"{label} {len(held)} selected",
            key=f"deliveries_{kind}_selected",
            disabled=not held,
            help=f"{word} the selected held deliveries ({len(held)} of {len(selected)}).",
        ):
            auth.ask(
                _PENDING,
                {
                    "kind": kind,
                    "subscription": subscription,
                    "ids": [r.delivery_id for r in held],
                    "offer": names,
                    "question": f"{word} {len(held)} held delivery(ies){of} "
                    f"({shown})? They are {outcome}.{rest}",
                },
            )
            st.rerun()


def _deployments(config: ApiConfig) -> dict:
    with connect(config) as api:
        return deliver_deployments(api)


def _page() -> None:
    result = st.session_state.pop(_RESULT, None)
    if result is not None:
        (st.success if result[0] else st.error)(result[1])
    _confirmation()
    _offer()
    refresh = st.button(
        "Refresh", key="deliveries_refresh", help="Read the ledger and Prefect again."
    )
    config = ApiConfig.from_env()
    fresh_for = 0.0 if refresh or result is not None else shared.max_age()
    try:
        deployments = shared.fresh(
            ("deliver deployments", config), fresh_for, lambda: _deployments(config)
        )
    except ApiUnavailable as exc:
        components.api_banner(str(exc))
        deployments = None
    try:
        ledger = open_ledger()
        views, notes = subscription_views(get_settings().deliveries_dir, ledger, deployments)
    except IndexUnavailable as exc:
        components.api_banner(str(exc))
        return
    for note in notes:
        st.warning(note, icon="⚠️")
    _subscriptions_table(views)
    st.subheader("Ledger")
    query = _filters(views)
    chosen = next((v for v in views if v.name == query.subscription), None)
    if chosen is not None:
        _subscription_card(chosen, ledger)
    number = st.session_state.get(_PAGE_NO, 0)
    try:
        page = ledger_page(ledger, replace(query, offset=number * PAGE_SIZE))
    except IndexUnavailable as exc:
        components.api_banner(str(exc))
        return
    selected = _ledger_table(page)
    _selection_bar(selected)
    if page.total > PAGE_SIZE:
        back, forward, _ = st.columns([1, 1, 6])
        back.button(
            "← Previous", key="deliveries_prev", disabled=number == 0, on_click=_turn, args=(-1,)
        )
        forward.button(
            "Next →", key="deliveries_next", disabled=not page.has_next, on_click=_turn, args=(1,)
        )


_page()
