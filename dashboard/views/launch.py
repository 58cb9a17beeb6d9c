"""Run a report: a form generated from the deployment's parameter schema.

The widgets, their bounds and the checks come from the schema `reportrunner deploy`
stored on the deployment (`dashboard.forms`), the same one Prefect enforces, so the
form cannot offer what the server would refuse. Problems show under their widget
before submitting, and the button stays disabled until there are none.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard import components, forms
from dashboard.actions import record
from dashboard.api import (
    ApiConfig,
    ApiUnavailable,
    LaunchableReport,
    LaunchTarget,
    RunRefused,
    connect,
    create_run,
    launchable_reports,
)
from dashboard.auth import ANALYST, PermissionDenied, current_user, require
from dashboard.components import shared

SINGLE, BATCH = "single", "batch"
MODES = {SINGLE: "Single run", BATCH: "Batch over a dimension"}
DIMENSIONS = "Batch over"
_OUTCOME = "launch_outcome"  # the last submit's (ok, message), shown until the next one

st.title("Run a report")


@st.cache_data(ttl=30, show_spinner=False)
def _reports(config: ApiConfig) -> list[LaunchableReport]:
    """Reports and their schemas; cached briefly for every viewer (they change on deploy)."""
    with connect(config) as api:
        return launchable_reports(api)


def _key(*parts: str) -> str:
    """One key per report, mode and parameter, so values never leak between forms."""
    return ":".join(("launch", *parts))


def _draw(widget: forms.Widget) -> Any:
    return getattr(st, widget.kind)(**widget.kwargs)


def _show(problems: list[forms.Problem]) -> None:
    for problem in problems:
        if not problem.missing:
            st.error(problem.message, icon="⚠️")


def _parameter_widgets(report: str, mode: str, fields: list[forms.Field]) -> tuple[dict, list]:
    values, problems = {}, []
    for field in fields:
        value = forms.parameter_value(
            field, _draw(forms.widget(field, _key(report, mode, field.name)))
        )
        problem = forms.check(field, value)
        if problem:
            _show([problem])
            problems.append(problem)
        values[field.name] = value
    return values, problems


def _batch_widgets(report: str, schema: dict) -> tuple[list[forms.DimensionPick], list]:
    dims = forms.dimensions(schema)
    chosen = st.multiselect(
        DIMENSIONS,
        [d.name for d in dims],
        key=_key(report, BATCH, "dimensions"),
        placeholder="Choose one or more dimensions",
        help="One report for every combination of the values you choose for these parameters.",
    )
    picks = []
    for dim in (d for d in dims if d.name in chosen):
        with st.container(border=True):
            every = dim.values is not None and _draw(
                forms.every_values_widget(dim, _key(report, BATCH, "all", dim.name))
            )
            raw = None
            if not every:
                raw = _draw(forms.values_widget(dim, _key(report, BATCH, "values", dim.name)))
            picks.append(forms.pick(dim, every, raw))
            _show(forms.check_pick(dim, picks[-1]))
    st.info(forms.batch_summary(dims, picks), icon="🧮")
    return picks, forms.check_dimensions(report, dims, picks)


def _submit(config: ApiConfig, target: LaunchTarget, parameters: dict) -> tuple[bool, str, str]:
    """Create the run and audit the attempt: (ok, message for the page, toast)."""
    user = current_user()
    what = forms.run_target(parameters)
    try:
        with connect(config) as api:
            try:
                require(user, ANALYST, "Run a report")
                run = create_run(api, target, parameters, tags=("dashboard", f"user:{user.name}"))
            except PermissionDenied as exc:
                record(api, user, "run.trigger", what, False, str(exc), outcome="denied")
                return False, str(exc), ""
            except RunRefused as exc:
                record(api, user, "run.trigger", what, False, str(exc))
                return False, str(exc), ""
            record(
                api,
                user,
                "run.trigger",
                what,
                True,
                f"started {run.name} from {run.deployment}",
                resource=f"prefect.flow-run.{run.id}",
            )
    except ApiUnavailable as exc:
        return False, str(exc), ""
    shared.forget()  # the new run shows on every page at once
    link = f"[open run {run.name}](run?id={run.id})"
    shown = what.replace("*", "\\*")  # "carrier=*" must not turn into markdown emphasis
    return True, f"Started {shown} from {run.deployment}: {link}.", f"Run started: {link}"


config = ApiConfig.from_env()
try:
    reports = _reports(config)
except ApiUnavailable as exc:
    components.api_banner(str(exc))
    st.stop()
if not reports:
    st.info("No report deployments on the Prefect server yet: run `reportrunner deploy`.")
    st.stop()

by_name = {r.report: r for r in reports}
chosen_report = by_name[
    st.selectbox(
        "Report",
        list(by_name),
        format_func=lambda name: f"{by_name[name].title} ({name})",
        key="launch_report",
        help="Every report in the catalog that `reportrunner deploy` put on the server.",
    )
]
modes = [m for m, t in ((SINGLE, chosen_report.single), (BATCH, chosen_report.batch)) if t]
mode = st.radio(
    "What to run",
    modes,
    format_func=MODES.get,
    key=_key(chosen_report.report, "mode"),
    horizontal=True,
    help="A single run renders one report. A batch renders one report per combination "
    "of the values you choose, as one run with one progress bar.",
)
target = chosen_report.single if mode == SINGLE else chosen_report.batch
schema = target.schema
name = chosen_report.report

problems: list[forms.Problem] = []
picks: list[forms.DimensionPick] | None = None
if mode == BATCH:
    picks, problems = _batch_widgets(name, schema)
    st.subheader("Shared parameters")
fields = forms.parameter_fields(schema, batched=tuple(p.name for p in picks or ()))
if fields:
    values, field_problems = _parameter_widgets(name, mode, fields)
else:
    values, field_problems = {}, []
    st.caption("Every parameter comes from the batch's dimensions.")
problems += field_problems
parameters = forms.run_parameters(name, values, picks)

missing = [DIMENSIONS if p.parameter == "over" else p.parameter for p in problems if p.missing]
if missing:
    st.caption("To run, fill in: " + ", ".join(dict.fromkeys(missing)) + ".")
clicked = st.button(
    "Start batch" if mode == BATCH else "Run report",
    type="primary",
    key="launch_submit",
    disabled=bool(problems),
    help=f"Creates a run of {target.deployment}; it starts when a worker picks it up.",
)
if clicked and not problems:  # disabled is drawn in the browser; check here too
    ok, message, toast = _submit(config, target, parameters)
    st.session_state[_OUTCOME] = (ok, message)
    if ok:
        st.toast(toast, icon="✅")
outcome = st.session_state.get(_OUTCOME)
if outcome:
    (st.success if outcome[0] else st.error)(outcome[1], icon="✅" if outcome[0] else "⚠️")
