"""The dashboard in headless Chromium against the real local stack (`reportrunner up`).

Every page loads without a traceback, passes axe-core's WCAG 2.1 AA checks (no
serious or critical violation) on a desktop and a phone, and in the dark theme;
screenshots land in test-artifacts/screenshots/.
"""

from __future__ import annotations

import pytest
from e2e.browsing import (
    DESKTOP,
    PHONE,
    describe,
    open_page,
    poll,
    problems,
    screenshot,
    serious_violations,
    settle,
)

FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def flow_run_state(stack, run_id) -> str:
    with stack.client() as client:
        return client.read_flow_run(run_id).state.type.value


@pytest.fixture(scope="module")
def report_run(stack):
    """One carrier-monthly run through the worker, started with the module's stack."""
    with stack.client() as client:
        deployment = client.read_deployment_by_name("report/carrier-monthly")
        run = client.create_flow_run_from_deployment(
            deployment.id, parameters={"parameters": {"carrier": "UA", "month": "2013-02"}}
        )
    return run.id


def finished(stack, run_id, timeout_s: float = 180) -> str:
    return poll(
        f"flow run {run_id} to finish",
        lambda: (state := flow_run_state(stack, run_id)) in FINAL and state,
        timeout_s,
    )


PAGES = {
    "overview": "",
    "runs": "runs",
    "run-detail": "run?id={run_id}",
    "launch": "launch",
    "outputs": "outputs",
    "operations": "operations",
}


def check_page(page, axe_script, name: str) -> None:
    """No traceback, no serious accessibility violation, and a screenshot of the page."""
    assert not problems(page), f"{name}: {problems(page)}"
    violations = serious_violations(page, axe_script)
    screenshot(page, name)
    width = page.viewport_size["width"]
    assert not violations, f"{name} at {width} px:\n{describe(violations)}"


@pytest.mark.parametrize("name", PAGES)
def test_every_page_is_clean_and_accessible_on_desktop_and_phone(
    page, stack, axe_script, report_run, name
):
    if name == "run-detail":
        finished(stack, report_run)  # the detail page then shows a whole run
    url = f"{stack.dashboard_url}/{PAGES[name].format(run_id=report_run)}"
    page.set_viewport_size(DESKTOP)
    open_page(page, url)
    check_page(page, axe_script, name)
    page.set_viewport_size(PHONE)
    page.reload()
    settle(page)
    check_page(page, axe_script, name)


def test_dark_theme_is_applied_and_accessible(browser, stack, axe_script):
    context = browser.new_context(viewport=DESKTOP, color_scheme="dark")
    try:
        page = context.new_page()
        open_page(page, f"{stack.dashboard_url}/runs")
        background = page.evaluate(
            "() => getComputedStyle(document.querySelector('[data-testid=stApp]')).backgroundColor"
        )
        red, green, blue = (int(v) for v in background[4:-1].split(",")[:3])
        assert red + green + blue < 150, f"not the dark theme: background {background}"
        violations = serious_violations(page, axe_script)
        screenshot(page, "runs-dark")
        assert not violations, f"runs, dark theme:\n{describe(violations)}"
    finally:
        context.close()
