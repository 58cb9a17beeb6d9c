"""The "Run a report" page, by AppTest, against the real server after `reportrunner deploy`.

Runs created here stay Scheduled (no worker is needed) and are deleted at the end
of the module, so no other test sees them.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prefect import get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterExpectedStartTime,
    FlowRunFilterTags,
)
from streamlit.testing.v1 import AppTest

from dashboard.actions import audit_log
from dashboard.api import RunRefused, connect, create_run, launchable_reports
from dashboard.auth import ANALYST, USERS_ENV, User
from dashboard.passwords import hash_password
from deployments.deploy import deploy

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
SINGLE = "report/carrier-monthly"
BATCH = "batch/carrier-monthly"
RUN_LINK = re.compile(r"\(run\?id=([0-9a-f-]{36})\)")


@pytest.fixture(scope="module")
def deployments(prefect_server) -> dict[str, str]:
    """`flow/deployment` → id, for every deployment `deploy()` made; removes the runs made here."""
    started = datetime.now(UTC)
    deploy()
    with get_client(sync_client=True) as client:
        flows = {f.id: f.name for f in client.read_flows(limit=200)}
        ids = {
            f"{flows[d.flow_id]}/{d.name}": str(d.id) for d in client.read_deployments(limit=200)
        }
    yield ids
    with get_client(sync_client=True) as client:
        for run in _runs(client, ids[SINGLE], ids[BATCH], since=started):
            client.delete_flow_run(run.id)


def _runs(client, *deployment_ids: str, since: datetime | None = None) -> list:
    """The dashboard-made runs of these deployments (expected to start after `since`)."""
    return client.read_flow_runs(
        flow_run_filter=FlowRunFilter(
            tags=FlowRunFilterTags(all_=["dashboard"]),
            expected_start_time=FlowRunFilterExpectedStartTime(after_=since) if since else None,
        ),
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=list(deployment_ids))),
        limit=200,
    )


def _count(deployment_id: str) -> int:
    with get_client(sync_client=True) as client:
        return client.count_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
        )


def _page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("views/launch.py").run()
    assert not at.exception
    at.selectbox(key="launch_report").set_value("carrier-monthly").run()
    return at


def _texts(at: AppTest) -> str:
    return "\n".join(str(m.value) for m in [*at.markdown, *at.caption])


def _submit(at: AppTest) -> str:
    """Click the enabled submit button; the id of the run the page links to."""
    button = at.button(key="launch_submit")
    assert not button.disabled
    button.click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert len(at.success) == 1
    toasts = [t.value for t in at.toast]
    assert len(toasts) == 1 and toasts[0].startswith("Run started: [open run ")
    match = RUN_LINK.search(at.success[0].value)
    assert match and match.group(1) in toasts[0]
    return match.group(1)


def _audited(target: str) -> list:
    """Audit entries for `target`; events are stored asynchronously, so poll briefly."""
    for _ in range(40):
        with connect() as api:
            found = [e for e in audit_log(api, limit=200) if e.target == target]
        if found:
            return found
        time.sleep(0.5)
    return []


def test_single_run_from_the_form(deployments):
    at = _page()
    assert not at.error
    assert at.radio(key="launch:carrier-monthly:mode").value == "single"
    assert at.button(key="launch_submit").disabled  # nothing chosen yet
    assert "To run, fill in: carrier, month." in _texts(at)
    carrier = at.selectbox(key="launch:carrier-monthly:single:carrier")
    assert carrier.help.startswith("Airline code (two characters)")
    carrier.set_value("AA").run()
    at.text_input(key="launch:carrier-monthly:single:month").input("2013-07").run()
    before = _count(deployments[SINGLE])

    run_id = _submit(at)

    assert "Started carrier-monthly carrier=AA month=2013-07 from report/carrier-monthly" in (
        at.success[0].value
    )
    assert _count(deployments[SINGLE]) == before + 1
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(run_id)
    assert str(run.deployment_id) == deployments[SINGLE]
    assert run.parameters == {
        "report": "carrier-monthly",
        "parameters": {"carrier": "AA", "month": "2013-07"},
    }
    assert run.state_type.value == "SCHEDULED"
    assert {"dashboard", "user:local"} <= set(run.tags)
    entries = _audited("carrier-monthly carrier=AA month=2013-07")
    assert [(e.action, e.user, e.outcome) for e in entries][:1] == [("run.trigger", "local", "ok")]
    # The outcome stays on the page through later reruns; the toast does not.
    at.run()
    assert len(at.success) == 1 and not at.toast


def test_batch_over_two_months_from_the_form(deployments):
    at = _page()
    at.radio(key="launch:carrier-monthly:mode").set_value("batch").run()
    at.multiselect(key="launch:carrier-monthly:batch:dimensions").set_value(["month"]).run()
    assert [i.value for i in at.info] == ["This batch renders 0 reports (0 values of month)."]
    values = at.multiselect(key="launch:carrier-monthly:batch:values:month")
    assert values.options[0] == "2013-01" and len(values.options) == 12
    values.set_value(["2013-01", "2013-02"]).run()
    at.selectbox(key="launch:carrier-monthly:batch:carrier").set_value("UA").run()
    assert [i.value for i in at.info] == ["This batch renders 2 reports (2 values of month)."]
    before = _count(deployments[BATCH])

    run_id = _submit(at)

    assert _count(deployments[BATCH]) == before + 1
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(run_id)
    assert str(run.deployment_id) == deployments[BATCH]
    assert run.parameters == {
        "report": "carrier-monthly",
        "over": {"month": ["2013-01", "2013-02"]},
        "parameters": {"carrier": "UA"},
    }


def test_batch_over_every_carrier_counts_before_submit(deployments):
    at = _page()
    at.radio(key="launch:carrier-monthly:mode").set_value("batch").run()
    at.multiselect(key="launch:carrier-monthly:batch:dimensions").set_value(
        ["carrier", "month"]
    ).run()
    at.checkbox(key="launch:carrier-monthly:batch:all:carrier").check().run()
    at.multiselect(key="launch:carrier-monthly:batch:values:month").set_value(["2013-03"]).run()
    assert [i.value for i in at.info] == [
        "This batch renders 16 reports (16 values of carrier × 1 value of month)."
    ]
    assert not at.button(key="launch_submit").disabled  # nothing is left to share
    assert "Every parameter comes from the batch's dimensions." in _texts(at)


def test_an_analyst_may_trigger_a_batch_of_every_carrier(deployments, monkeypatch):
    monkeypatch.setenv(USERS_ENV, f"ann:analyst:{hash_password('not-used-here')}")
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["auth_user"] = User("ann", ANALYST)  # signed in, as the form would
    at.run()
    at.switch_page("views/launch.py").run()
    at.selectbox(key="launch_report").set_value("carrier-monthly").run()
    at.radio(key="launch:carrier-monthly:mode").set_value("batch").run()
    at.multiselect(key="launch:carrier-monthly:batch:dimensions").set_value(["carrier"]).run()
    at.checkbox(key="launch:carrier-monthly:batch:all:carrier").check().run()
    assert "To run, fill in: month." in _texts(at)
    at.text_input(key="launch:carrier-monthly:batch:month").input("2013-05").run()

    run_id = _submit(at)

    assert "Started carrier-monthly batch over carrier=\\* month=2013-05" in at.success[0].value
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(run_id)
    assert run.parameters == {
        "report": "carrier-monthly",
        "over": {"carrier": "*"},
        "parameters": {"month": "2013-05"},
    }
    assert "user:ann" in run.tags
    entries = _audited("carrier-monthly batch over carrier=* month=2013-05")
    assert [(e.user, e.role, e.outcome) for e in entries][:1] == [("ann", ANALYST, "ok")]


def test_invalid_month_shows_the_message_and_creates_no_run(deployments):
    before = _count(deployments[SINGLE])
    at = _page()
    at.selectbox(key="launch:carrier-monthly:single:carrier").set_value("AA").run()
    month = at.text_input(key="launch:carrier-monthly:single:month")
    month.input("2014-01").run()
    assert [e.value for e in at.error] == [
        "carrier-monthly: parameter 'month' is '2014-01', above the maximum '2013-12'"
    ]
    assert at.button(key="launch_submit").disabled  # AppTest, like a browser, cannot click it
    at.run()
    assert not at.exception and not at.success and not at.toast
    assert _count(deployments[SINGLE]) == before
    month.input("2013-12").run()  # the month alone held the form back
    assert not at.error and not at.button(key="launch_submit").disabled


def test_server_refusal_is_one_line(deployments):
    before = _count(deployments[SINGLE])
    with connect() as api:
        target = next(r.single for r in launchable_reports(api) if r.report == "carrier-monthly")
        with pytest.raises(RunRefused) as refused:
            create_run(
                api,
                target,
                {"report": "carrier-monthly", "parameters": {"carrier": "ZZ", "month": "2013-07"}},
            )
    message = str(refused.value)
    assert message.startswith("report/carrier-monthly: the Prefect server refused the run: ")
    assert "parameters.carrier" in message  # the server's reason, not just its status
    assert "\n" not in message
    assert _count(deployments[SINGLE]) == before


def test_launchable_reports_are_the_on_demand_deployments(deployments):
    with connect() as api:
        reports = {r.report: r for r in launchable_reports(api)}
        calls = api.calls
    assert {"carrier-monthly", "airport-daily", "destination-quarterly"} <= set(reports)
    carrier = reports["carrier-monthly"]
    assert carrier.title == "Carrier monthly performance"
    assert carrier.single.deployment == SINGLE and carrier.batch.deployment == BATCH
    assert carrier.single.deployment_id == deployments[SINGLE]
    assert "over" in carrier.batch.schema["properties"]
    # The scheduled batch fixes `over`: the form does not offer it.
    assert deployments["batch/carrier-monthly-batch"] not in {
        t.deployment_id for r in reports.values() for t in (r.single, r.batch) if t
    }
    assert calls <= 4


def test_page_shows_a_banner_when_the_api_is_down(monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("views/launch.py").run()
    assert not at.exception
    assert len(at.error) == 1 and "Prefect API unavailable" in at.error[0].value
    # No form to fill in against an API that cannot take it.
    assert "launch_submit" not in [b.key for b in at.button]
