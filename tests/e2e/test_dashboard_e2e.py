"""The dashboard in headless Chromium against the real local stack (`reportrunner up`).

Every page loads without a traceback, passes axe-core's WCAG 2.1 AA checks (no
serious or critical violation) on a desktop and a phone, and in the dark theme;
screenshots land in test-artifacts/screenshots/. Then what users do: run a report
from the form and download its PDF; pause the work pool and see a run wait; retry
the failed items of a batch.
"""

from __future__ import annotations

import io
import re
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from e2e.browsing import (
    DESKTOP,
    INACTIVE_AT_REST,
    PHONE,
    at_rest,
    choose,
    describe,
    open_page,
    poll,
    problems,
    screenshot,
    serious_violations,
    settle,
    type_into,
    widget,
)
from playwright.sync_api import expect
from prefect.client.schemas.actions import WorkPoolUpdate
from pypdf import PdfReader

from deployments.topology import WORK_POOL

FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
HELD_S = 25  # how long a run must stay Scheduled on a paused pool


def flow_run_state(stack, run_id) -> str:
    with stack.client() as client:
        return client.read_flow_run(run_id).state.type.value


@dataclass(frozen=True)
class StartedRuns:
    report: str  # carrier-monthly UA 2013-02
    failing_batch: str  # flaky-carrier over AS and HA, with HA's source broken
    broken: Path  # the marker that breaks HA; removing it mends the source


@pytest.fixture(scope="module")
def started(stack) -> StartedRuns:
    """Runs started with the stack, so the worker renders them while pages are checked."""
    broken = stack.data_dir / "broken-HA"
    broken.touch()
    return StartedRuns(
        report=start_run(
            stack, "report/carrier-monthly", {"parameters": {"carrier": "UA", "month": "2013-02"}}
        ),
        failing_batch=start_run(
            stack, "batch/flaky-carrier", {"over": {"carrier": ["AS", "HA"], "month": ["2013-01"]}}
        ),
        broken=broken,
    )


def start_run(stack, deployment: str, parameters: dict) -> str:
    with stack.client() as client:
        target = client.read_deployment_by_name(deployment)
        return str(client.create_flow_run_from_deployment(target.id, parameters=parameters).id)


def finished(stack, run_id, timeout_s: float = 180) -> str:
    try:
        return poll(
            f"flow run {run_id} to finish",
            lambda: (state := flow_run_state(stack, run_id)) in FINAL and state,
            timeout_s,
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{stack.logs()}") from None


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
    violations = serious_violations(page, axe_script, exclude=INACTIVE_AT_REST)
    screenshot(page, name)
    width = page.viewport_size["width"]
    assert not violations, f"{name} at {width} px:\n{describe(violations)}"


@pytest.mark.parametrize("name", PAGES)
def test_every_page_is_clean_and_accessible_on_desktop_and_phone(
    page, stack, axe_script, started, name
):
    if name == "run-detail":
        finished(stack, started.report)  # the detail page then shows a whole run
    url = f"{stack.dashboard_url}/{PAGES[name].format(run_id=started.report)}"
    page.set_viewport_size(DESKTOP)
    open_page(page, url)
    at_rest(page)
    check_page(page, axe_script, name)
    page.set_viewport_size(PHONE)  # the same session, laid out again
    settle(page)
    check_page(page, axe_script, name)


def test_dark_theme_is_applied_and_accessible(browser, stack, axe_script):
    # Streamlit's default theme follows the system's: a browser that prefers dark gets it.
    context = browser.new_context(viewport=DESKTOP, color_scheme="dark")
    try:
        page = context.new_page()
        open_page(page, f"{stack.dashboard_url}/runs")
        at_rest(page)
        background = page.evaluate(
            "() => getComputedStyle(document.querySelector('[data-testid=stApp]')).backgroundColor"
        )
        red, green, blue = (int(v) for v in background[4:-1].split(",")[:3])
        assert red + green + blue < 150, f"not the dark theme: background {background}"
        violations = serious_violations(page, axe_script, exclude=INACTIVE_AT_REST)
        screenshot(page, "runs-dark")
        assert not violations, f"runs, dark theme:\n{describe(violations)}"
    finally:
        context.close()


def run_state_shown(page) -> str:
    """The run detail page's State metric, e.g. '✅ Completed'."""
    metric = page.locator('[data-testid="stMetric"]', has_text="State")
    return metric.locator('[data-testid="stMetricValue"]').inner_text()


def completes_on_the_page(page, stack, run_id: str, timeout_s: float = 300) -> None:
    """The run completes (Prefect API), and its open detail page updates itself to say so."""
    assert finished(stack, run_id, timeout_s) == "COMPLETED", stack.logs()
    state = page.locator('[data-testid="stMetric"]', has_text="State")
    expect(state.locator('[data-testid="stMetricValue"]')).to_contain_text(
        "Completed", timeout=90_000
    )
    settle(page)


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages)


def test_a_run_from_the_form_completes_and_its_pdf_downloads(page, stack):
    open_page(page, f"{stack.dashboard_url}/launch")
    choose(page, "launch_report", "(carrier-monthly)", exact=False)
    choose(page, "launch:carrier-monthly:single:carrier", "B6")
    type_into(page, "launch:carrier-monthly:single:month", "2013-03")
    widget(page, "launch_submit").get_by_role("button").click()
    settle(page)
    success = page.locator('[data-testid="stAlertContentSuccess"]')
    assert "carrier=B6 month=2013-03" in success.inner_text()

    with page.context.expect_page() as opened:  # the link opens the run in a new tab
        success.get_by_role("link", name=re.compile("open run")).click()
    run_page = opened.value
    run_page.wait_for_load_state()
    settle(run_page)
    run_id = parse_qs(urlparse(run_page.url).query)["id"][0]
    with stack.client() as client:
        run = client.read_flow_run(run_id)
    assert run.parameters["parameters"] == {"carrier": "B6", "month": "2013-03"}

    completes_on_the_page(run_page, stack, run_id)
    with run_page.expect_download() as download:
        run_page.get_by_role("button", name=re.compile(r"^Download PDF")).click()
    assert download.value.suggested_filename == "carrier-monthly_B6_2013-03.pdf"
    data = Path(download.value.path()).read_bytes()
    assert data.startswith(b"%PDF-")
    assert "JetBlue Airways" in pdf_text(data)


def test_retrying_the_failed_item_of_a_batch_renders_only_that_item(page, stack, started):
    def item(carrier: str) -> Path:
        return stack.outputs / "flaky-carrier" / f"carrier={carrier}" / "month=2013-01"

    run_id = started.failing_batch
    try:
        assert finished(stack, run_id, timeout_s=300) == "FAILED"
    finally:
        started.broken.unlink()  # mended
    assert not list(item("HA").glob("*.pdf"))
    kept = item("AS") / "manifest.json"
    kept_written = kept.stat().st_mtime_ns

    open_page(page, f"{stack.dashboard_url}/run?id={run_id}")
    retry = widget(page, "run_retry-failed").get_by_role("button")
    assert "Retry 1 failed items" in retry.inner_text()
    retry.click()
    # The confirmation is drawn by a re-run of the page: wait for it, not for a moment
    # (right after the click the page can still read as settled from the run before).
    expect(page.get_by_text("Retry 1 failed items of")).to_be_visible(timeout=30_000)
    widget(page, "run_confirm").get_by_role("button").click()
    # Shown once: the page re-runs itself from now on, as the run is no longer final.
    expect(page.locator('[data-testid="stAlertContentSuccess"]')).to_contain_text(
        "Retrying 1 failed item"
    )
    assert flow_run_state(stack, run_id) != "FAILED"

    completes_on_the_page(page, stack, run_id)
    (pdf,) = item("HA").glob("*.pdf")
    assert "Carrier HA operated" in pdf_text(pdf.read_bytes())
    assert kept.stat().st_mtime_ns == kept_written, "the item that had succeeded rendered again"


def pool_paused(stack) -> bool:
    with stack.client() as client:
        return client.read_work_pool(WORK_POOL).is_paused


def toggle_pool(page, stack, question: str, result: str) -> None:
    """Pause or resume the work pool on the Operations page, confirming the question."""
    open_page(page, f"{stack.dashboard_url}/operations")
    widget(page, f"pool_toggle_{WORK_POOL}").get_by_role("button").click()
    # The confirmation is drawn by a re-run of the page: wait for it, not for a moment.
    expect(page.get_by_text(question)).to_be_visible(timeout=30_000)
    widget(page, "ops_confirm").get_by_role("button").click()
    expect(page.locator('[data-testid="stAlertContentSuccess"]')).to_contain_text(
        result, timeout=30_000
    )


def test_a_paused_pool_holds_new_runs_until_it_is_resumed(page, stack):
    toggle_pool(page, stack, f"Pause work pool '{WORK_POOL}'?", f"Paused work pool '{WORK_POOL}'.")
    try:
        assert pool_paused(stack)
        # The pool's status as icon and text, as the page reads it again.
        open_page(page, f"{stack.dashboard_url}/operations")
        expect(page.get_by_text("⏸️ PAUSED", exact=True)).to_be_visible(timeout=30_000)
        run_id = start_run(
            stack, "report/carrier-monthly", {"parameters": {"carrier": "DL", "month": "2013-04"}}
        )
        # Longer than two of the worker's polls (every 10 s): it must not pick the run up.
        deadline = time.monotonic() + HELD_S
        while time.monotonic() < deadline:
            assert flow_run_state(stack, run_id) == "SCHEDULED"
            time.sleep(2)
        open_page(page, f"{stack.dashboard_url}/run?id={run_id}")
        assert re.search("Scheduled|Late", run_state_shown(page))

        toggle_pool(
            page, stack, f"Resume work pool '{WORK_POOL}'?", f"Resumed work pool '{WORK_POOL}'."
        )
        assert not pool_paused(stack)
    finally:
        if pool_paused(stack):  # never leave the other tests a stopped pool
            with stack.client() as client:
                client.update_work_pool(WORK_POOL, WorkPoolUpdate(is_paused=False))
    open_page(page, f"{stack.dashboard_url}/run?id={run_id}")
    completes_on_the_page(page, stack, run_id)


def test_the_browsers_back_returns_to_the_run_batch_and_item_it_showed(page, stack, started):
    """Back to a page whose subject is in its address shows that subject again. (The run
    detail page said "No run id given": Streamlit had dropped its input's state while
    another page was shown, and the address's id was the one it had already copied.)"""
    finished(stack, started.report)
    finished(stack, started.failing_batch, timeout_s=300)
    sidebar = page.locator('[data-testid="stSidebarNav"]')
    main = page.locator('[data-testid="stMain"]')
    for address, subject in (
        (f"run?id={started.report}", lambda: run_state_shown(page)),
        (
            f"batch?id={started.failing_batch}",
            lambda: page.get_by_role("link", name="open run").first.get_attribute("href"),
        ),
        (
            "item?report=carrier-monthly&key=carrier%3DUA+month%3D2013-02",
            lambda: main.locator("h3").first.inner_text(),
        ),
    ):
        open_page(page, f"{stack.dashboard_url}/{address}")
        before = subject()
        sidebar.locator('a[href$="/operations"]').click()
        expect(page).to_have_url(re.compile(r"/operations$"))
        settle(page)
        page.go_back()
        expect(page).to_have_url(re.compile(re.escape(address) + "$"))
        settle(page)
        text = main.inner_text()
        assert "No run id given" not in text and "Open an item from" not in text, text
        expect(widget(page, "batch_pick")).to_have_count(0)  # the batch in the address
        assert subject() == before, address
