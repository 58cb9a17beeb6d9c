"""The Deliveries page and the item page's deliveries (AppTest), over the real ledger.

Ledger rows are seeded straight into the session's item index, each test under a
subscription name of its own (a subscription known to the ledger only, so no
deployment exists for it unless the test makes one). Operator decisions go through
the page's confirmation and `dashboard.actions`; their audit entries are read back
from the session's Prefect server.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from pathlib import Path

import pytest
from prefect import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId, FlowRunFilter
from prefect.exceptions import ObjectNotFound
from streamlit.testing.v1 import AppTest

from dashboard import actions
from dashboard.api import connect
from dashboard.auth import ANALYST, OPERATOR, User
from dashboard.passwords import hash_password
from reports.contracts import Outcome, item_key
from reports.delivery import SENDABLE, Ledger, delivery_id
from reports.index import item_id, open_index

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
REPORT = "carrier-monthly"
PASSWORDS = {"olga": "op-pass-1", "ann": "an-pass-2"}
OPTIONAL = dict.fromkeys(("reason", "last_error", "message_id", "run_id", "sent_at", "decided_by"))


# ---- seeding and reading ------------------------------------------------------------------


def _subscription() -> str:
    return f"dl-{uuid.uuid4().hex[:10]}"


def _seed(subscription: str, *rows: dict, report: str = REPORT) -> list[str]:
    """Ledger rows as a delivery run plans them; the first given is the newest."""
    now = time.time()
    planned = []
    for age, row in enumerate(rows):
        key = row.pop("key", "carrier=AA month=2013-07")
        fingerprint = row.pop("fingerprint", "f" * 64)
        recipient = row.pop("recipient")
        ident = item_id(report, key)
        planned.append(
            {
                "delivery_id": delivery_id(subscription, ident, fingerprint, recipient, "email"),
                "subscription": subscription,
                "report": report,
                "item_id": ident,
                "key": key,
                "fingerprint": fingerprint,
                "recipient": recipient,
                "channel": "email",
                **OPTIONAL,  # one bulk insert: every row names the same columns
                "attempts": 0,
                "created_at": now - 60 * age,
                "updated_at": now - 60 * age,
                **row,
            }
        )
    stored = Ledger(open_index()).plan(planned)
    assert len(stored) == len(planned)
    return [row["delivery_id"] for row in planned]


def _ledger_rows(subscription: str) -> dict[str, tuple[str, str | None]]:
    """recipient → (status, decided_by) as the ledger now holds them."""
    rows, _ = Ledger(open_index()).rows(subscription=subscription)
    return {row.recipient: (row.status, row.decided_by) for row in rows}


def _audit_until(predicate, timeout=60):
    """The server's event persister writes every few seconds: poll until the entry is in."""
    deadline = time.monotonic() + timeout
    while True:
        with connect() as api:
            found = [e for e in actions.audit_log(api, 200) if predicate(e)]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(1)


# ---- the app --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hashes() -> dict[str, str]:
    return {name: hash_password(password) for name, password in PASSWORDS.items()}


def _app(hashes: dict[str, str] | None = None, sign_in: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90)
    if hashes:
        at.secrets["auth"] = {
            "users": {
                "olga": {"password_hash": hashes["olga"], "role": OPERATOR},
                "ann": {"password_hash": hashes["ann"], "role": ANALYST},
            }
        }
    at.run()
    if sign_in:
        at.text_input(key="sign_in_name").input(sign_in)
        at.text_input(key="sign_in_password").input(PASSWORDS[sign_in])
        at.button[0].click().run()  # the form's submit button
        assert f"👤 Signed in as **{sign_in}**" in " ".join(c.value for c in at.sidebar.caption)
    return at


def _deliveries(at: AppTest, subscription: str | None = None) -> AppTest:
    at.switch_page("views/deliveries.py").run()
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Deliveries"]
    if subscription:
        at.selectbox(key="deliveries_subscription").set_value(subscription).run()
        assert not at.exception, at.exception
    return at


def _frame(at: AppTest, first_column: str):
    return next(d.value for d in at.dataframe if d.value.columns[0] == first_column)


def _ledger(at: AppTest):
    return _frame(at, "When")


def _select(at: AppTest, rows: list[int], generation: int = 0) -> AppTest:
    at.session_state[f"deliveries_table_{generation}"] = {
        "selection": {"rows": rows, "columns": []}
    }
    return at.run()


def _control_keys(at: AppTest) -> list[str]:
    wanted = ("deliveries_approve", "deliveries_discard", "deliveries_resend", "deliveries_run")
    return [b.key for b in at.button if (b.key or "").startswith(wanted)]


# ---- the page -------------------------------------------------------------------------------


def test_the_page_lists_counts_and_rows_newest_first_and_searches_by_recipient():
    sub = _subscription()
    _seed(
        sub,
        {
            "recipient": "carol@ua.example",
            "status": "failed",
            "attempts": 4,
            "last_error": "550 5.1.1 mailbox unavailable",
        },
        {
            "recipient": "dave@dl.example",
            "key": "carrier=DL month=2013-07",
            "status": "held",
            "reason": "quality gate: 2 empty sections",
        },
        {
            "recipient": "ann@aa.example",
            "status": "sent",
            "attempts": 1,
            "sent_at": time.time() - 120,
            "message_id": "<1@x>",
        },
        {
            "recipient": "bob@aa.example",
            "status": "sent",
            "attempts": 1,
            "sent_at": time.time() - 180,
            "message_id": "<2@x>",
        },
        {
            "recipient": "ann@aa.example",
            "key": "carrier=AA month=2013-06",
            "status": "skipped",
            "reason": "unchanged since it was last sent",
        },
    )
    at = _deliveries(_app())

    subscriptions = _frame(at, "Subscription").set_index("Subscription")
    row = subscriptions.loc[sub]
    assert (row["✅ sent"], row["❌ failed"], row["✋ held"], row["⏭️ skipped"]) == (2, 1, 1, 1)
    assert row["Report"] == REPORT and row["Channel"] == "email"
    assert row["Deployment"] == "⚠️ not deployed"
    assert row["Note"] == "no longer in deliveries/"  # known to the ledger only
    declared = subscriptions.loc["carrier-contacts"]  # the repository's own subscription
    assert declared["Report"] == REPORT
    assert declared["Schedule"] == "cron 0 7 2 * * (America/New_York)"

    at.selectbox(key="deliveries_subscription").set_value(sub).run()
    tiles = {m.label: m.value for m in at.metric}
    assert tiles == {
        "✅ sent": "2",
        "❌ failed": "1",
        "✋ held": "1",
        "⏭️ skipped": "1",
        "🕒 to send": "0",
    }
    assert "**Deliveries 1–5 of 5**" in [m.value for m in at.markdown]
    ledger = _ledger(at)
    assert list(ledger["Recipient"]) == [  # newest first
        "carol@ua.example",
        "dave@dl.example",
        "ann@aa.example",
        "bob@aa.example",
        "ann@aa.example",
    ]
    assert list(ledger["Status"]) == ["❌ failed", "✋ held", "✅ sent", "✅ sent", "⏭️ skipped"]
    assert list(ledger["Error / reason"])[:2] == [
        "550 5.1.1 mailbox unavailable",
        "quality gate: 2 empty sections",
    ]
    assert ledger["Open"].iloc[1] == f"item?report={REPORT}&key=carrier%3DDL+month%3D2013-07"
    assert ledger["Fingerprint"].iloc[0] == "f" * 10

    at.text_input(key="deliveries_recipient").input("ANN@aa").run()
    ledger = _ledger(at)
    assert list(ledger["Recipient"]) == ["ann@aa.example", "ann@aa.example"]
    at.text_input(key="deliveries_item").input("2013-06").run()
    assert list(_ledger(at)["Status"]) == ["⏭️ skipped"]
    at.text_input(key="deliveries_recipient").input("nobody@").run()
    assert "No deliveries match these filters." in [i.value for i in at.info]
    assert not at.exception


def test_the_ledger_is_paginated_fifty_rows_a_page():
    sub = _subscription()
    _seed(sub, *({"recipient": f"r{i:03d}@x.example", "status": "sent"} for i in range(53)))
    at = _deliveries(_app(), sub)
    assert "**Deliveries 1–50 of 53**" in [m.value for m in at.markdown]
    first = list(_ledger(at)["Recipient"])
    assert first[0] == "r000@x.example" and len(first) == 50
    at.button(key="deliveries_next").click().run()
    assert "**Deliveries 51–53 of 53**" in [m.value for m in at.markdown]
    assert list(_ledger(at)["Recipient"]) == ["r050@x.example", "r051@x.example", "r052@x.example"]
    at.text_input(key="deliveries_recipient").input("r05").run()  # new filters: page 1
    assert "**Deliveries 1–3 of 3**" in [m.value for m in at.markdown]


def test_a_held_item_is_not_sent_until_an_operator_approves_it(hashes):
    sub = _subscription()
    held, _ = _seed(
        sub,
        {"recipient": "dave@dl.example", "status": "held", "reason": "31 pages, far from 4"},
        {"recipient": "erin@dl.example", "status": "queued"},
    )
    assert "held" not in SENDABLE and "approved" in SENDABLE  # what a delivery run sends

    # An analyst reads the page, the ledger and the counts, and gets no control.
    at = _deliveries(_app(hashes, sign_in="ann"), sub)
    assert any("need the operator role; you are an analyst" in c.value for c in at.caption)
    assert {m.label: m.value for m in at.metric}["✋ held"] == "1"
    assert "✋ held" in list(_ledger(at)["Status"])
    assert _control_keys(at) == []
    # The action itself refuses the analyst too (a hidden button is not a permission).
    with connect() as api:
        refused = actions.approve_held(api, User("ann", ANALYST), [held], sub)
    assert not refused.ok and "needs the operator role; ann is an analyst" in refused.message
    assert _ledger_rows(sub)["dave@dl.example"] == ("held", None)

    # An operator selects the held row, is asked, and confirms.
    at = _deliveries(_app(hashes, sign_in="olga"), sub)
    assert list(_ledger(at)["Recipient"]) == ["dave@dl.example", "erin@dl.example"]
    _select(at, [0, 1])  # the queued row is not held: left alone
    button = at.button(key="deliveries_approve_selected")
    assert button.label == "👍 Approve 1 selected" and not button.disabled
    button.click().run()
    question = at.main.warning[0].value
    assert question.startswith(f"Approve 1 held delivery(ies) of '{sub}' (dave@dl.example: ")
    assert "1 selected row(s) are not held and are left alone" in question
    assert _ledger_rows(sub)["dave@dl.example"] == ("held", None)  # not before confirming
    at.button(key="deliveries_confirm").click().run()
    assert not at.exception, at.exception
    assert at.success[0].value.startswith(
        f"1 held delivery(ies) of '{sub}' approved: sent on the subscription's next run."
    )
    assert _ledger_rows(sub) == {
        "dave@dl.example": ("approved", "olga"),
        "erin@dl.example": ("queued", None),
    }
    assert list(_ledger(at)["Decided by"]) == ["olga", ""]

    # Approval sends nothing by itself: the page offers the run, which needs a deployment.
    assert "sent on the subscription's next run, not before" in at.info[0].value
    at.button(key=f"deliveries_run_{sub}").click().run()
    assert at.main.warning[0].value.startswith(f"Start a run of 'deliver/{sub}' now?")
    at.button(key="deliveries_confirm").click().run()
    assert at.error[0].value == f"No deployment 'deliver/{sub}' exists: run `reportrunner deploy`."

    approved = _audit_until(  # the analyst's refusal is an entry too: wait for the operator's
        lambda e: e.action == "delivery.approve" and sub in e.target and e.outcome == "ok"
    )
    assert approved and approved[0].user == "olga" and approved[0].role == OPERATOR
    assert approved[0].outcome == "ok" and approved[0].target == f"1 held delivery(ies) of {sub}"
    assert "dave@dl.example" in approved[0].message
    denied = _audit_until(lambda e: e.action == "delivery.approve" and e.user == "ann")
    assert any(e.outcome == "denied" and sub in e.target for e in denied)


def test_discard_all_held_of_a_subscription_after_confirmation():
    sub = _subscription()
    _seed(
        sub,
        {"recipient": "a@x.example", "status": "held", "reason": "quality gate: warning"},
        {"recipient": "b@x.example", "status": "held", "reason": "quality gate: warning"},
        {"recipient": "c@x.example", "status": "sent", "sent_at": time.time()},
    )
    at = _deliveries(_app(), sub)  # no sign-in configured: the local operator
    button = at.button(key="deliveries_discard_all")
    assert button.label == "🗑️ Discard all 2 held"
    button.click().run()
    assert at.main.warning[0].value == (
        f"Discard all 2 held delivery(ies) of '{sub}'? "
        "They are discarded: this version is never sent to them."
    )
    at.button(key="deliveries_keep").click().run()  # changed their mind: nothing happens
    assert not at.main.warning and set(_ledger_rows(sub).values()) == {
        ("held", None),
        ("sent", None),
    }

    at.button(key="deliveries_discard_all").click().run()
    at.button(key="deliveries_confirm").click().run()
    assert not at.exception, at.exception
    assert at.success[0].value.startswith(f"2 held delivery(ies) of '{sub}' discarded: never sent.")
    assert _ledger_rows(sub) == {
        "a@x.example": ("discarded", "local"),
        "b@x.example": ("discarded", "local"),
        "c@x.example": ("sent", None),
    }
    assert {m.label: m.value for m in at.metric}["✋ held"] == "0"
    assert at.button(key="deliveries_discard_all").disabled
    assert not [b for b in at.button if (b.key or "").startswith("deliveries_run_")]  # no offer
    found = _audit_until(lambda e: e.action == "delivery.discard" and sub in e.target)
    assert found and found[0].user == "local" and found[0].outcome == "ok"


def test_resend_failed_requeues_and_says_when_no_deployment_exists():
    sub = _subscription()
    _seed(
        sub,
        {"recipient": "a@x.example", "status": "failed", "last_error": "421 try later"},
        {"recipient": "b@x.example", "status": "failed", "last_error": "421 try later"},
        {"recipient": "c@x.example", "status": "sent", "sent_at": time.time()},
    )
    at = _deliveries(_app(), sub)
    button = at.button(key="deliveries_resend")
    assert button.label == "🔁 Resend 2 failed"
    button.click().run()
    assert at.main.warning[0].value == (
        f"Resend 2 failed delivery(ies) of '{sub}'? They are queued again and a run of "
        f"'deliver/{sub}' is started."
    )
    assert {s for s, _ in _ledger_rows(sub).values()} == {"failed", "sent"}
    at.button(key="deliveries_confirm").click().run()
    assert not at.exception, at.exception
    assert at.error[0].value == (
        f"Requeued 2 failed delivery(ies) of '{sub}', but no deployment 'deliver/{sub}' "
        "exists to send them: run `reportrunner deploy`."
    )
    assert _ledger_rows(sub) == {
        "a@x.example": ("queued", None),
        "b@x.example": ("queued", None),
        "c@x.example": ("sent", None),
    }
    assert at.button(key="deliveries_resend").label == "🔁 Resend 0 failed"
    assert at.button(key="deliveries_resend").disabled
    found = _audit_until(lambda e: e.action == "delivery.resend-failed" and sub in e.target)
    assert found and found[0].outcome == "failed" and found[0].target == f"subscription {sub}"


@pytest.fixture
def deliver_deployment():
    """A `deliver/<name>` deployment of a fresh subscription; removed with its runs."""
    sub = _subscription()
    with get_client(sync_client=True) as client:
        flow_id = client.create_flow_from_name("deliver")
        deployment_id = client.create_deployment(
            flow_id=flow_id, name=sub, parameters={"subscription": sub}
        )
    yield sub, deployment_id
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
        )
        for run in runs:
            with contextlib.suppress(ObjectNotFound):
                client.delete_flow_run(run.id)
        client.delete_deployment(deployment_id)


def test_resend_failed_starts_a_run_of_the_subscriptions_deployment(deliver_deployment):
    sub, deployment_id = deliver_deployment
    _seed(sub, {"recipient": "a@x.example", "status": "failed", "last_error": "timeout"})
    at = _deliveries(_app(), sub)
    subscriptions = _frame(at, "Subscription").set_index("Subscription")
    assert subscriptions.loc[sub, "Deployment"] == "🕒 on demand"
    at.button(key="deliveries_resend").click().run()
    at.button(key="deliveries_confirm").click().run()
    assert not at.exception, at.exception
    message = at.success[0].value
    assert message.startswith(f"Requeued 1 failed delivery(ies) of '{sub}' and started '")
    assert _ledger_rows(sub) == {"a@x.example": ("queued", None)}
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
            flow_run_filter=FlowRunFilter(tags={"all_": ["resend-failed"]}),
        )
    assert len(runs) == 1 and runs[0].parameters == {"subscription": sub}
    assert f"'{runs[0].name}'" in message


def test_the_item_page_shows_who_received_which_version():
    report, params = f"dl-item-{uuid.uuid4().hex[:6]}", {"carrier": "AA", "month": "2013-07"}
    key = item_key(params)
    open_index().record(
        report,
        [
            Outcome(
                key=key,
                params=params,
                status="rendered",
                fingerprint="a" * 64,
                rendered_at="2026-11-02T10:00:00+00:00",
                pages=4,
            )
        ],
        run_id=str(uuid.uuid4()),
    )
    sub = _subscription()
    _seed(
        sub,
        {
            "recipient": "ann@aa.example",
            "fingerprint": "b" * 64,
            "status": "failed",
            "attempts": 3,
            "last_error": "550 mailbox unavailable",
        },
        {
            "recipient": "ann@aa.example",
            "fingerprint": "a" * 64,
            "status": "sent",
            "attempts": 1,
            "sent_at": 1_793_613_600.0,
        },  # 2026-11-02 10:00 UTC
        # Another item whose id contains this one's: not this item's delivery.
        {"recipient": "zed@aa.example", "key": key + "x", "status": "sent"},
        report=report,
    )
    at = AppTest.from_file(APP, default_timeout=90).run()
    at.query_params["report"], at.query_params["key"] = report, key
    at.switch_page("views/item.py").run()
    assert not at.exception, at.exception
    assert "#### Deliveries" in [m.value for m in at.markdown]
    frame = _frame(at, "Recipient")
    assert list(frame["Recipient"]) == ["ann@aa.example", "ann@aa.example"]
    assert list(frame["Status"]) == ["❌ failed", "✅ sent"]
    assert list(frame["Fingerprint"]) == ["b" * 10, "a" * 10]
    assert list(frame["Sent"]) == ["–", "2026-11-02 10:00 UTC"]
    assert list(frame["Attempts"]) == [3, 1]
    assert list(frame["Error / reason"]) == ["550 mailbox unavailable", ""]
    assert set(frame["Channel"]) == {"email"} and set(frame["Subscription"]) == {sub}


def test_a_down_api_or_index_is_one_line_never_a_traceback(monkeypatch):
    sub = _subscription()
    _seed(sub, {"recipient": "a@x.example", "status": "held", "reason": "quality gate"})
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    at = _deliveries(_app(), sub)
    assert len(at.error) == 1 and "Prefect API unavailable" in at.error[0].value
    assert "\n" not in at.error[0].value
    subscriptions = _frame(at, "Subscription").set_index("Subscription")  # the ledger still shows
    assert subscriptions.loc[sub, "Deployment"] == "❔ unknown (Prefect API down)"
    assert list(_ledger(at)["Status"]) == ["✋ held"]
    monkeypatch.undo()

    from reports.settings import get_settings

    monkeypatch.setenv("REPORTRUNNER_INDEX_URL", "postgresql+psycopg2://u:secret@127.0.0.1:9/x")
    get_settings.cache_clear()
    try:
        at = _deliveries(_app())
        shown = " ".join(e.value for e in at.error)
        assert "item index postgresql" in shown and "secret" not in shown
        assert len(at.error) == 1 and not at.dataframe
    finally:
        monkeypatch.delenv("REPORTRUNNER_INDEX_URL")
        get_settings.cache_clear()
