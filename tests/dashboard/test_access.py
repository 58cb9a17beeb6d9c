"""Sign-in and roles, end to end: AppTest with `at.secrets`, the real server, the audit log.

The decisive test signs an analyst in, forces a pending "pause pool" confirmation
into the session (as a crafted request could) and confirms it: the action layer
must refuse, the pool must stay as it was, and the refusal must be audited.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from prefect import get_client
from prefect.states import Failed, Running
from streamlit.testing.v1 import AppTest

from dashboard import actions, auth
from dashboard.api import connect
from dashboard.auth import ANALYST, User
from dashboard.passwords import hash_password

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
POOL = "access-test-pool"
PASSWORDS = {"olga": "op-pass-1", "ann": "an-pass-2"}


@pytest.fixture(scope="module")
def hashes() -> dict[str, str]:
    return {name: hash_password(password) for name, password in PASSWORDS.items()}


@pytest.fixture(scope="module")
def pool(prefect_server):
    """A pool of this module's own, so pausing it cannot disturb other tests' runs."""
    from prefect.client.schemas.actions import WorkPoolCreate

    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name=POOL, type="process"), overwrite=True)
    yield POOL
    with get_client(sync_client=True) as client:
        client.delete_work_pool(POOL)


def _app(hashes: dict[str, str]) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90)
    at.secrets["auth"] = {
        "users": {
            "olga": {"password_hash": hashes["olga"], "role": "operator"},
            "ann": {"password_hash": hashes["ann"], "role": "analyst"},
        }
    }
    return at.run()


def _sign_in(at: AppTest, name: str, password: str) -> AppTest:
    at.text_input(key="sign_in_name").input(name)
    at.text_input(key="sign_in_password").input(password)
    return at.button[0].click().run()  # the form's submit button


def _all_text(at: AppTest) -> str:
    parts = [
        e.value for kind in ("markdown", "caption", "error", "info", "title") for e in at.get(kind)
    ]
    return "\n".join(str(p) for p in parts)


def test_sign_in_refuses_a_wrong_password_then_admits_the_right_one(hashes):
    at = _app(hashes)
    assert [t.value for t in at.title] == ["Sign in"]
    assert not at.metric  # no page content before sign-in
    _sign_in(at, "olga", "wrong")
    assert [e.value for e in at.error] == ["Unknown user or wrong password"]
    _sign_in(at, "nobody", PASSWORDS["olga"])
    assert [e.value for e in at.error] == ["Unknown user or wrong password"]
    _sign_in(at, "olga", PASSWORDS["olga"])
    assert not at.exception
    assert "👤 Signed in as **olga** (operator)" in [c.value for c in at.sidebar.caption]
    assert [t.value for t in at.title] == ["Overview"]
    assert hashes["olga"] not in _all_text(at)
    at.button(key="sign_out").click().run()
    assert [t.value for t in at.title] == ["Sign in"]


def test_users_from_the_environment_sign_in_too(monkeypatch):
    monkeypatch.setenv("REPORTRUNNER_DASHBOARD_USERS", f"eve:analyst:{hash_password('e-pass')}")
    at = AppTest.from_file(APP, default_timeout=90).run()
    _sign_in(at, "eve", "e-pass")
    assert "👤 Signed in as **eve** (analyst)" in [c.value for c in at.sidebar.caption]


def test_misconfigured_sign_in_says_so_in_one_line(monkeypatch):
    monkeypatch.setenv("REPORTRUNNER_DASHBOARD_USERS", "eve:admin:scrypt$secret-looking")
    at = AppTest.from_file(APP, default_timeout=90).run()
    assert not at.exception
    assert len(at.error) == 1
    message = at.error[0].value
    assert message.startswith("Sign-in is misconfigured:") and "eve" in message
    assert "secret-looking" not in message and "\n" not in message
    assert not at.title  # no page is shown


def test_no_sign_in_configured_means_the_local_operator():
    from streamlit import config

    before = config.get_option("server.address")
    config.set_option("server.address", "127.0.0.1")  # as `reportrunner up` starts it
    try:
        at = AppTest.from_file(APP, default_timeout=90).run()
    finally:
        config.set_option("server.address", before)
    captions = [c.value for c in at.sidebar.caption]
    assert "👤 Signed in as **local** (operator)" in captions
    assert any("listens on 127.0.0.1 only" in c for c in captions)
    assert not at.sidebar.warning


def test_an_analyst_reads_operations_but_a_forced_action_is_refused_and_audited(hashes, pool):
    at = _app(hashes)
    _sign_in(at, "ann", PASSWORDS["ann"])
    at.switch_page("views/operations.py").run()
    assert not at.exception
    assert at.info[0].value.startswith("Read-only: pausing and resuming need the operator role")
    assert not [b for b in at.button if (b.key or "").startswith(("pool_", "queue_", "deploy"))]
    at.session_state["ops_pending"] = auth.Pending(  # forced: the page never offers it
        "ann",
        {
            "kind": "pool",
            "args": {"name": pool, "paused": True},
            "question": f"Pause work pool '{pool}'?",
        },
    )
    at.run()
    at.button(key="ops_confirm").click().run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        "Pause work pool needs the operator role; ann is an analyst"
    ]
    with get_client(sync_client=True) as client:
        assert not client.read_work_pool(pool).is_paused
    denied = _audit_until(lambda e: e.user == "ann" and e.action == "pool.pause")
    assert denied and denied[0].outcome == "denied" and denied[0].role == ANALYST
    assert denied[0].target == f"work pool {pool}"


def test_every_operator_action_refuses_an_analyst_and_changes_nothing(pool):
    ann = User("ann", ANALYST)
    with get_client(sync_client=True) as client:
        from prefect import flow

        @flow(name="access-test")
        def access_test() -> None:  # never called: it names the run's flow
            return None

        run = client.create_flow_run(access_test)
        client.set_flow_run_state(run.id, Running(), force=True)
        client.set_flow_run_state(run.id, Failed(), force=True)
    run_id = str(run.id)
    try:
        with connect() as api:
            results = [
                actions.retry_run(api, ann, run_id),
                actions.cancel_run(api, ann, run_id),
                actions.delete_runs(api, ann, [run_id]),
                actions.retry_failed_items(api, ann, run_id),
                actions.set_pool_paused(api, ann, pool, True),
            ]
        assert [r.ok for r in results] == [False] * 5
        assert all("needs the operator role; ann is an analyst" in r.message for r in results)
        with get_client(sync_client=True) as client:
            assert client.read_flow_run(run.id).state.type.value == "FAILED"
            assert not client.read_work_pool(pool).is_paused
    finally:
        with get_client(sync_client=True) as client:
            client.delete_flow_run(run.id)
    wanted = {"run.retry", "run.cancel", "runs.delete", "batch.retry-failed"}
    denied = _audit_until(
        lambda e: e.user == "ann" and e.outcome == "denied" and run_id in e.target,
        until=lambda found: {e.action for e in found} >= wanted,
    )
    assert {e.action for e in denied} >= wanted


def test_a_run_trigger_is_recorded_with_who_and_what(prefect_server):
    with connect() as api:
        assert actions.record(
            api, User("ann", ANALYST), "run.trigger", "carrier-monthly carrier=AA", True, "started"
        )
    found = _audit_until(lambda e: e.action == "run.trigger" and e.user == "ann")
    assert found[0].target == "carrier-monthly carrier=AA" and found[0].outcome == "ok"


def _audit_until(predicate, until=bool, timeout=60):
    """The server's event persister writes every few seconds: poll until the entries are in."""
    deadline = time.monotonic() + timeout
    while True:
        with connect() as api:
            found = [e for e in actions.audit_log(api, 200) if predicate(e)]
        if until(found) or time.monotonic() > deadline:
            return found
        time.sleep(1)
