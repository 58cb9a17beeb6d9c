"""Password sign-in in real Chromium: it holds in new tabs and reloads, and sign-out ends it.

The stack runs with one password user. After signing in, the browser holds an
HttpOnly, SameSite=Strict session cookie; a run page opened in a new tab and then
reloaded shows the page, not "Sign in". After "Sign out" the cookie is gone and a
new tab asks again. No page shows Streamlit's developer toolbar ("Deploy"). The run
form commits a typed date when Tab leaves the field, and its message always
describes the value in the field.
"""

from __future__ import annotations

import pytest
from e2e.browsing import DESKTOP, open_page, poll, settle, widget
from playwright.sync_api import expect

from dashboard.passwords import hash_password
from dashboard.session import COOKIE

USER, PASSWORD = "olga", "e2e-sign-in-pass"


@pytest.fixture(scope="module")
def stack_env() -> dict[str, str]:
    # No REPORTRUNNER_DASHBOARD_SECRET: the stack makes its own key in its home.
    return {"REPORTRUNNER_DASHBOARD_USERS": f"{USER}:operator:{hash_password(PASSWORD)}"}


@pytest.fixture
def context(browser, stack):
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(60_000)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture(scope="module")
def run_id(stack) -> str:
    with stack.client() as client:
        deployment = client.read_deployment_by_name("report/carrier-monthly")
        run = client.create_flow_run_from_deployment(
            deployment.id, parameters={"parameters": {"carrier": "UA", "month": "2013-03"}}
        )
    return str(run.id)


def sign_in_prompt(page):
    return page.get_by_role("heading", name="Sign in")


def signed_in(page):
    return page.get_by_text(f"Signed in as {USER} (operator)")


def sign_in(page, url: str) -> None:
    open_page(page, url)
    expect(sign_in_prompt(page)).to_be_visible()
    widget(page, "sign_in_name").locator("input").fill(USER)
    widget(page, "sign_in_password").locator("input").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    settle(page)
    expect(signed_in(page)).to_be_visible()


def session_cookie(context) -> dict | None:
    return next((c for c in context.cookies() if c["name"] == COOKIE), None)


def assert_no_developer_toolbar(page) -> None:
    expect(page.locator('[data-testid="stAppDeployButton"]')).to_have_count(0)
    expect(page.get_by_role("button", name="Deploy")).to_have_count(0)


def test_sign_in_holds_across_tabs_and_reloads_until_sign_out(context, stack, run_id):
    first = context.new_page()
    sign_in(first, stack.dashboard_url)
    assert_no_developer_toolbar(first)
    cookie = poll("the session cookie", lambda: session_cookie(context), timeout_s=30, every_s=0.5)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/"
    assert cookie["expires"] > 0  # expires, rather than living as long as the browser
    assert PASSWORD not in cookie["value"] and USER not in cookie["value"].split(".")[-1]

    run_page = f"{stack.dashboard_url}/run?id={run_id}"
    tab = context.new_page()  # what "open run" in a new tab does
    open_page(tab, run_page)
    expect(signed_in(tab)).to_be_visible()
    expect(sign_in_prompt(tab)).to_have_count(0)
    tab.reload()
    settle(tab)
    expect(signed_in(tab)).to_be_visible()
    expect(sign_in_prompt(tab)).to_have_count(0)
    assert_no_developer_toolbar(tab)

    tab.get_by_role("button", name="Sign out").click()
    settle(tab)
    expect(sign_in_prompt(tab)).to_be_visible()
    poll("the cookie to be deleted", lambda: session_cookie(context) is None, 30, every_s=0.5)
    fresh = context.new_page()
    open_page(fresh, run_page)
    expect(sign_in_prompt(fresh)).to_be_visible()
    expect(signed_in(fresh)).to_have_count(0)
    first.reload()  # the first tab was signed out too
    settle(first)
    expect(sign_in_prompt(first)).to_be_visible()


def test_the_run_form_commits_on_tab_and_describes_the_current_value(context, stack):
    page = context.new_page()
    sign_in(page, f"{stack.dashboard_url}/launch")

    def choose_report(label: str) -> None:
        widget(page, "launch_report").get_by_role("combobox").click()
        page.get_by_role("option", name=label).click()
        settle(page)

    def type_and_tab(key: str, text: str) -> None:
        field = widget(page, key).locator("input")
        field.fill(text)
        field.press("Tab")  # leave the field, as a user does; no Enter
        settle(page)

    month = "launch:carrier-monthly:single:month"
    choose_report("Carrier monthly performance (carrier-monthly)")
    type_and_tab(month, "2014-01")
    expect(page.get_by_text("parameter 'month' is '2014-01', above the maximum")).to_be_visible()
    type_and_tab(month, "2014-1")  # once kept back by the browser, with the old message
    expect(page.get_by_text("must be a month as YYYY-MM, got '2014-1'")).to_be_visible()
    expect(page.get_by_text("'2014-01'")).to_have_count(0)
    type_and_tab(month, "2013-07")
    expect(page.get_by_text("parameter 'month'")).to_have_count(0)

    choose_report("Airport daily operations (airport-daily)")
    expect(page.get_by_text("To run, fill in: origin, date.")).to_be_visible()
    type_and_tab("launch:airport-daily:single:date", "2013-07-04")
    expect(page.get_by_text("To run, fill in: origin.")).to_be_visible()  # the date counted
