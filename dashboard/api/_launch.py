"""The run form's side of the API: which reports can be run, and starting a run.

`launchable_reports()` lists each report's on-demand deployments — the single run
`report/<name>` and the batch `batch/<name>` — with the parameter schema `deploy`
stored on them: 1 CSRF token, 1 flows, 1 per 200 deployments. Scheduled batches
(their `over` fixed in prefect.yaml) are not offered.

`create_run()` returns at once (the run waits Scheduled for a worker). It names the run
as the flow will (`reports.contracts.run_name`), so the business name shows at once, not
Prefect's temporary random one. A server that refuses the parameters (its schema check,
HTTP 409/422) raises `RunRefused`; any other failure leaves as `ApiUnavailable`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx

from prefect_api import Api, one_line
from reports.contracts import BATCH_FLOW, REPORT_FLOW, run_name

PAGE = 200
_REFUSED = {400, 409, 422}


class RunRefused(Exception):
    """The server would not create the run with these parameters; one line, safe to show."""


@dataclass(frozen=True)
class LaunchTarget:
    """One deployment the form can start, with its parameter schema."""

    deployment_id: str
    deployment: str  # "report/carrier-monthly"
    schema: dict[str, Any]

    @property
    def flow(self) -> str:
        """ "report" or "batch": the flow part of the deployment's full name."""
        return self.deployment.split("/", 1)[0]


@dataclass(frozen=True)
class LaunchableReport:
    report: str
    title: str
    single: LaunchTarget | None
    batch: LaunchTarget | None


@dataclass(frozen=True)
class CreatedRun:
    id: str
    name: str
    deployment: str


def launchable_reports(api: Api) -> list[LaunchableReport]:
    """Every report with an on-demand deployment, sorted by title."""
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    flow_filter = FlowFilter(name=FlowFilterName(any_=[REPORT_FLOW, BATCH_FLOW]))
    with api.guard("report deployments"):
        flows = {f.id: f.name for f in api.client.read_flows(flow_filter=flow_filter)}
        deployments: list = []
        while True:
            page = api.client.read_deployments(
                flow_filter=flow_filter, limit=PAGE, offset=len(deployments)
            )
            deployments += page
            if len(page) < PAGE:
                break
    found: dict[str, dict[str, Any]] = {}
    for deployment in sorted(deployments, key=lambda d: d.name):
        flow = flows.get(deployment.flow_id)
        report = (deployment.parameters or {}).get("report")
        # Only on-demand deployments: a scheduled batch fixes `over` and more.
        if (
            flow not in (REPORT_FLOW, BATCH_FLOW)
            or not report
            or set(deployment.parameters) != {"report"}
        ):
            continue
        slot = found.setdefault(report, {"title": _title(deployment, report)})
        target = LaunchTarget(
            deployment_id=str(deployment.id),
            deployment=f"{flow}/{deployment.name}",
            schema=dict(deployment.parameter_openapi_schema or {}),
        )
        # Several for one report: the one named after it wins.
        if flow not in slot or deployment.name == report:
            slot[flow] = target
    reports = [
        LaunchableReport(
            report=report,
            title=slot["title"],
            single=slot.get(REPORT_FLOW),
            batch=slot.get(BATCH_FLOW),
        )
        for report, slot in found.items()
    ]
    return sorted(reports, key=lambda r: (r.title.lower(), r.report))


def create_run(
    api: Api, target: LaunchTarget, parameters: dict[str, Any], tags: Iterable[str] = ()
) -> CreatedRun:
    """A new flow run of `target` with `parameters`, Scheduled now."""
    refused: str | None = None
    with api.guard(f"a new run of {target.deployment}"):
        try:
            run = api.client.create_flow_run_from_deployment(
                UUID(target.deployment_id),
                parameters=parameters,
                tags=list(tags),
                name=run_name(target.flow, parameters),  # None: Prefect's own name
            )
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code not in _REFUSED:
                raise
            refused = _detail(exc.response)
    if refused is not None:
        raise RunRefused(
            one_line(f"{target.deployment}: the Prefect server refused the run: {refused}")
        )
    return CreatedRun(id=str(run.id), name=run.name, deployment=target.deployment)


def _title(deployment: Any, report: str) -> str:
    """The catalog title `deploy` wrote into the schema, else the deployment's description."""
    schema = deployment.parameter_openapi_schema or {}
    title = schema.get("properties", {}).get("report", {}).get("description")
    return str(title or deployment.description or report)


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    return str(detail or f"HTTP {response.status_code}")
