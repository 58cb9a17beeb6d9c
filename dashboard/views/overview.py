"""Overview: health, batches (running ones with their progress, then the latest with their
outcome), figures in reports for the window, then runs: KPIs against the previous
window, runs over time, run time by report, and insights (slow runs, failure spikes,
failures by error with a retry).

One refresh is shared by every viewer for their refresh interval
(`dashboard.components.shared`). When it has to be read, each part is drawn as soon
as its reads are answered (health, then batches, then the runs), so the browser
draws while the slower reads of the run samples are still under way. (Two viewers
who open it at the same moment both read it; the answer kept is the later one.)
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import streamlit as st

from dashboard import actions, auth, components, controls
from dashboard.api import (
    SLOW_FACTOR,
    SLOW_MIN_EXCESS_S,
    SLOW_MIN_RUNS,
    SPIKE_FACTOR,
    SPIKE_MIN_FAILED,
    ActiveBatches,
    ApiConfig,
    ApiUnavailable,
    FailureGroup,
    Health,
    Overview,
    Window,
    connect,
    finish_overview,
    start_overview,
)
from dashboard.api._items import RecentBatch, ReportFigures, recent_batch_views, report_figures
from dashboard.api._overview import PARALLEL_READS
from dashboard.components import shared
from dashboard.formatting import clock, window_label
from reports import get_settings
from reports.index import IndexUnavailable

_LAST = "overview_last_good"
_PENDING = "overview_retry_pending"  # (group key, run ids) awaiting confirmation, per user
_RESULT = "overview_retry_result"  # (ok, message) of the last group retry
_REFRESH = "overview_refresh"  # the "Refresh now" button: read again, whatever the age
MAX_GROUPS = 10
NO_RETRY = (
    "↩️ Started from the CLI: re-run with `reportrunner batch …`; only deployment runs "
    "can be retried here."
)

settings = controls.current()
config = ApiConfig.from_env()
window_text = window_label(settings.window.total_seconds() / 3600)
st.title("Overview")


@dataclass(frozen=True)
class _ItemsView:
    """What the item index adds to the page: recent batches and figures in reports."""

    batches: list[RecentBatch]
    figures: ReportFigures | None
    error: str | None = None


def _items_view(api, window: Window) -> _ItemsView:
    try:
        return _ItemsView(
            recent_batch_views(api, limit=8), report_figures(window.start, window.end)
        )
    except (IndexUnavailable, ApiUnavailable) as exc:
        return _ItemsView([], None, str(exc))


@dataclass(frozen=True)
class _Shown:
    """One refresh: what the page draws, and the API calls it took."""

    data: Overview
    items: _ItemsView
    calls: int


def _render(shown: _Shown) -> None:
    _health(shown.data.health)
    _batches(shown.data.batches, shown.items)
    _figures(shown.items)
    _runs(shown.data)
    _updated(shown)


def _read_and_render(window: Window) -> _Shown:
    """Read one refresh, drawing each part as soon as what it shows is answered."""
    with connect(config) as api, ThreadPoolExecutor(max_workers=PARALLEL_READS + 1) as pool:
        reads = start_overview(api, window, pool)  # the health check, then the rest started
        items_read = pool.submit(_items_view, api, window)
        _health(reads.health)
        items = items_read.result()
        _batches(reads.batches.result(), items)
        _figures(items)
        data = finish_overview(reads)
        _runs(data)
        shown = _Shown(data, items, api.calls)
    _updated(shown)
    return shown


def _health(health: Health) -> None:
    st.subheader(
        "Health", help="Is the Prefect API up, can workers pick up runs, is anything late."
    )
    components.health_strip(health)


def _batches(batches: ActiveBatches, items: _ItemsView) -> None:
    st.subheader("Batches", help="Running batches with their progress, then the latest ones.")
    components.active_batches(batches)
    if items.error:
        st.caption(f"⚠️ {items.error}")
    components.recent_batches_table(items.batches)


def _figures(items: _ItemsView) -> None:
    if items.figures is not None:
        st.subheader(
            f"Reports in the {window_text}",
            help="Report items, not flow runs: a batch of 192 reports counts 192 here.",
        )
        components.report_figure_tiles(items.figures, window_text)


def _runs(data: Overview) -> None:
    st.subheader(
        f"Runs in the {window_text}",
        help="Flow runs by the time they were expected to start; the small figures compare "
        "with the window of the same length before.",
    )
    components.kpi_tiles(data.kpis, window_text)
    components.runs_chart(data.history, since=data.window.start)
    st.subheader(
        "Run time by report",
        help=f"Median (bar) and 90th percentile (mark) of the latest "
        f"{data.insights.completed_sample} completed runs in the window (at most 200). "
        "Each bar is one report and kind of run: single report runs, batches and their "
        "chunks apart.",
    )
    components.duration_chart(data.insights.durations)
    st.subheader("Insights", help="What stands out in the window, read from the same samples.")
    _insights(data)


def _updated(shown: _Shown) -> None:
    st.caption(
        f"Updated {clock(shown.data.health.checked_at)} with {shown.calls} Prefect API calls."
    )


def _insights(data: Overview) -> None:
    found = data.insights
    st.markdown(
        "##### 🐢 Slow runs",
        help=f"Completed runs that took more than {SLOW_FACTOR:g} × their report's median "
        f"(reports with at least {SLOW_MIN_RUNS} runs in the sample, and at least "
        f"{SLOW_MIN_EXCESS_S:g} s longer).",
    )
    components.slow_runs_list(found.slow_runs)
    st.markdown(
        "##### 🔺 Failure spikes",
        help=f"Time slots of this window with at least {SPIKE_MIN_FAILED} failed or crashed "
        f"runs and at least {SPIKE_FACTOR:g} × the typical (median) slot of this window and "
        "the one before.",
    )
    components.failure_spikes_list(found.spikes)
    st.markdown(
        "##### ❌ Failures by error",
        help="Failed and crashed runs whose messages differ only in values (numbers, ids, "
        "quoted values, paths) are one group. Links open the run's detail page.",
    )
    failed_now = data.kpis.current.failed
    if found.failed_sample < failed_now:
        st.caption(f"Grouped from the latest {found.failed_sample} of {failed_now} failed runs.")
    result = st.session_state.get(_RESULT)  # the retry callback ran before this script
    if result:  # shown even when the retried group has gone
        ok, message = result
        (st.success if ok else st.error)(message, icon="✅" if ok else "⚠️")
    if not found.failure_groups:
        st.caption("✅ No failed runs in this window.")
        return
    user = auth.current_user()
    if not user.is_operator:
        st.caption(f"Retrying runs needs the operator role; you are an {user.role}.")
    for group in found.failure_groups[:MAX_GROUPS]:
        with components.failure_group_card(group):
            if user.is_operator:
                _retry_controls(group)
    shown = min(MAX_GROUPS, len(found.failure_groups))
    if len(found.failure_groups) > shown:
        st.caption(f"{shown} of {len(found.failure_groups)} groups shown, largest first.")


def _retry_controls(group: FailureGroup) -> None:
    """'Retry these N runs', then a confirmation that states N; the retry runs in a callback."""
    key = "retry_" + hashlib.sha1(group.signature.encode()).hexdigest()[:12]
    pending = auth.pending(_PENDING)
    if pending and pending[0] == key:
        count = len(pending[1])
        st.warning(
            f"Retry {count} {'run' if count == 1 else 'runs'} that failed with this error? "
            "Each runs again from the start.",
            icon="🔁",
        )
        yes, no = st.columns(2)
        yes.button(
            f"Yes, retry {count} {'run' if count == 1 else 'runs'}",
            key=f"{key}_confirm",
            type="primary",
            on_click=_retry_pending,
            help="Sets each run to AwaitingRetry, as the Prefect UI's Retry does; audited.",
        )
        no.button(
            "Cancel",
            key=f"{key}_cancel",
            on_click=_forget_pending,
            help="Leave the runs as they are.",
        )
        return
    retryable = len(group.retryable_ids)
    if not retryable:  # no button that can never be pressed: say what to do instead
        st.caption(NO_RETRY)
        return
    if retryable == group.count:
        why = "Run them again from the start; you confirm first."
    else:
        why = (
            f"{retryable} of these {group.count} runs came from a deployment; only those can "
            "be retried here."
        )
    st.button(
        f"🔁 Retry these {retryable} {'run' if retryable == 1 else 'runs'}",
        key=key,
        on_click=_ask_to_retry,
        args=(key, tuple(group.retryable_ids)),
        help=why,
    )
    if retryable < group.count:
        st.caption(
            f"The other {group.count - retryable} started from the CLI: re-run them with "
            "`reportrunner batch …`."
        )


def _ask_to_retry(key: str, run_ids: tuple[str, ...]) -> None:
    # The ids are kept as they were when asked, so the confirmed count is the retried count.
    auth.ask(_PENDING, (key, run_ids))


def _forget_pending() -> None:
    auth.forget(_PENDING)


def _retry_pending() -> None:
    """Retry the confirmed runs; `actions.retry_run` checks the role and audits each one."""
    pending = auth.pending(_PENDING)
    auth.forget(_PENDING)
    if not pending:
        return
    run_ids = pending[1]
    user = auth.current_user()
    try:
        with connect(config) as api:
            results = [actions.retry_run(api, user, run_id) for run_id in run_ids]
    except ApiUnavailable as exc:
        st.session_state[_RESULT] = (False, str(exc))
        return
    finally:
        shared.forget()  # every page shows the runs as they are after the retry
    done = sum(r.ok for r in results)
    refused = next((r.message for r in results if not r.ok), None)
    message = f"Retry queued for {done} of {len(run_ids)} runs."
    if refused:
        message += f" First refusal: {refused}"
    st.session_state[_RESULT] = (not refused, message)


@st.fragment(run_every=settings.run_every)
def _live() -> None:
    key = ("overview", config, settings.window, get_settings().resolved_index_url)
    fresh_for = 0.0 if st.session_state.get(_REFRESH) else shared.max_age()
    shown: _Shown | None = shared.peek(key, fresh_for)
    if shown is not None:
        _render(shown)
    else:
        started = shared.now()
        slot = st.empty()  # a refresh that fails half-way leaves nothing half-drawn
        try:
            with slot.container():
                shown = _read_and_render(Window.last(settings.window))
        except ApiUnavailable as exc:
            slot.empty()
            last: Overview | None = st.session_state.get(_LAST)
            components.api_banner(str(exc), last.health.checked_at if last else None)
            if last is not None:
                _render(_Shown(last, _items_view(None, last.window), last.calls))
            return
        shared.put(key, shown, started)
    st.session_state[_LAST] = shown.data
    if not settings.auto_refresh:
        st.button(
            "Refresh now",
            key=_REFRESH,
            help="Auto-refresh is off: read the figures again.",
        )


_live()
