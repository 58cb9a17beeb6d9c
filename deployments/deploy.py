"""`reportrunner deploy`: make the Prefect server match prefect.yaml, idempotently.

Creates what is missing and updates what differs — work pool, queues, the SQL
source concurrency limit, the failure automation and every deployment — so running
it twice changes nothing. Deployments get parameter schemas built from each
report's spec (types, choices from the data, defaults, descriptions), which Prefect
enforces and the dashboard's run form is generated from.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from prefect.client.schemas.actions import (
    DeploymentScheduleCreate,
    GlobalConcurrencyLimitCreate,
    WorkPoolCreate,
)
from prefect.client.schemas.objects import ConcurrencyOptions
from prefect.client.schemas.schedules import CronSchedule
from prefect.exceptions import ObjectNotFound
from prefect.flows import load_flow_from_entrypoint
from prefect.utilities.callables import parameter_schema
from pydantic import ValidationError

from deployments.topology import QUEUES, SQL_SOURCE_SLOTS, WORK_POOL
from flows.source_slots import SQL_SOURCE_LIMIT
from prefect_api import ApiConfig, connect
from reports import ReportError, SpecError
from reports.definitions import default_catalog
from reports.schema import parameter_property, parameters_schema
from reports.settings import PROJECT_ROOT
from reports.spec import yaml_error

PREFECT_YAML = PROJECT_ROOT / "prefect.yaml"
log = logging.getLogger(__name__)


@dataclass
class DeployResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "<what>: <why>", one line each
    notes: list[str] = field(default_factory=list)

    def note(self, what: str, change: str) -> None:
        getattr(self, change).append(what)

    def summary(self) -> str:
        text = (
            f"{len(self.created)} created, {len(self.updated)} updated, "
            f"{len(self.unchanged)} unchanged"
        )
        return text + (f", {len(self.skipped)} skipped" if self.skipped else "")


REPORT_ENTRYPOINT = "flows.report_flow.report"
BATCH_ENTRYPOINT = "flows.batch_flow.batch"
DELIVER_ENTRYPOINT = "flows.delivery_flow.deliver"


def load_deployment_specs(
    path: Path = PREFECT_YAML, skipped: list[str] | None = None
) -> list[dict[str, Any]]:
    """prefect.yaml's deployments, plus on-demand ones for each catalog report not listed.

    Every report gets a single-run deployment (flow `report`) and an on-demand batch
    deployment (flow `batch`, named after the report), so a report added to the
    catalog can be run and fanned out from the dashboard without editing prefect.yaml.
    A broken report folder gets none; its error is added to `skipped`.
    """
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SpecError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise SpecError(yaml_error(path, exc)) from None
    specs = [copy.deepcopy(d) for d in document.get("deployments") or []]
    skipped = skipped if skipped is not None else []
    specs += _on_demand_specs(specs, skipped)
    specs += _delivery_specs(skipped)
    for spec in specs:
        for schedule in spec.get("schedules") or []:
            _validate_cron(spec["name"], schedule)
    return specs


def _delivery_triggers(client, result: DeployResult) -> list[str]:
    """Automations that deliver after each batch, for subscriptions that ask for it."""
    from deployments.delivery_triggers import ensure_delivery_triggers
    from reports.delivery import subscriptions_in
    from reports.settings import get_settings

    try:
        subscriptions = list(subscriptions_in(get_settings().deliveries_dir).values())
    except ReportError:
        return []  # already in `skipped` from the deployments
    return ensure_delivery_triggers(client, subscriptions)


def _delivery_specs(skipped: list[str]) -> list[dict[str, Any]]:
    """A `deliver/<name>` deployment per subscription in deliveries/, with its schedule."""
    from reports.delivery import subscriptions_in
    from reports.settings import get_settings

    try:
        subscriptions = subscriptions_in(get_settings().deliveries_dir)
    except ReportError as exc:  # a broken subscription file: say so, deploy the rest
        skipped.append(f"deliveries: {exc}")
        return []
    specs = []
    for subscription in subscriptions.values():
        schedule = subscription.schedule
        specs.append(
            {
                "name": subscription.name,
                "entrypoint": DELIVER_ENTRYPOINT,
                "description": subscription.description or f"Delivers {subscription.report}.",
                "parameters": {"subscription": subscription.name},
                "tags": ["reportrunner", f"report:{subscription.report}", "delivery"],
                "work_pool": {"name": WORK_POOL, "work_queue_name": "scheduled"},
                "enforce_parameter_schema": True,
                # One run of a subscription at a time: two would race for the same sends.
                "concurrency_limit": {"limit": 1, "collision_strategy": "ENQUEUE"},
                "schedules": [schedule.model_dump()] if schedule else [],
            }
        )
    return specs


def _on_demand_specs(specs: list[dict[str, Any]], skipped: list[str]) -> list[dict[str, Any]]:
    """Copies of the first single-run deployment for the reports prefect.yaml leaves out."""
    template = next((d for d in specs if d.get("entrypoint") == REPORT_ENTRYPOINT), None)
    if template is None:
        return []
    taken = {(d.get("entrypoint"), d["name"]) for d in specs}
    single = {
        (d.get("parameters") or {}).get("report")
        for d in specs
        if d.get("entrypoint") == REPORT_ENTRYPOINT
    }
    generated = []
    for name in default_catalog().names():
        try:
            title = default_catalog().get(name).spec.title
        except ReportError as exc:
            skipped.append(f"report {name}: {exc}")
            continue
        if name not in single:
            spec = copy.deepcopy(template)
            spec.update(
                name=name,
                parameters={"report": name},
                description=title,
                tags=["reportrunner", f"report:{name}", "adhoc"],
            )
            generated.append(spec)
        if (BATCH_ENTRYPOINT, name) not in taken:
            spec = copy.deepcopy(template)
            spec.update(
                name=name,
                entrypoint=BATCH_ENTRYPOINT,
                parameters={"report": name},
                description=f"{title}: a batch over the values you choose.",
                tags=["reportrunner", f"report:{name}", "batch", "adhoc"],
            )
            generated.append(spec)
    return generated


def _validate_cron(deployment: str, schedule: dict[str, Any]) -> None:
    try:
        CronSchedule(cron=schedule["cron"], timezone=schedule.get("timezone"))
    except ValidationError as exc:
        detail = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise SpecError(
            f"prefect.yaml: deployment '{deployment}': invalid schedule "
            f"{schedule.get('cron')!r}: {detail}"
        ) from None
    except (ValueError, KeyError) as exc:
        detail = str(exc).splitlines()[-1] if str(exc) else type(exc).__name__
        raise SpecError(
            f"prefect.yaml: deployment '{deployment}': invalid schedule "
            f"{schedule.get('cron')!r}: {detail}"
        ) from None


def deployment_schema(spec: dict[str, Any]) -> dict[str, Any]:
    """The flow's signature schema, with `report`, `parameters` and `over` made specific."""
    flow = load_flow_from_entrypoint(spec["entrypoint"])
    schema = parameter_schema(flow).model_dump()
    # An unknown parameter is refused when the run is created (HTTP 409), instead of
    # reaching the flow-run process, where it crashed the run without a message.
    schema["additionalProperties"] = False
    report_name = (spec.get("parameters") or {}).get("report")
    if not report_name:
        return schema
    report = default_catalog().get(report_name)
    props = schema["properties"]
    props["report"].update(enum=[report_name], default=report_name, description=report.spec.title)
    if "formats" in props:  # only what this report offers
        props["formats"]["anyOf"][0]["items"]["enum"] = list(report.spec.outputs)
        props["formats"]["anyOf"][0]["maxItems"] = len(report.spec.outputs)
    if "over" in props:  # a batch: dimensions may be "*" (all) or a list of values
        dims = report.spec.batch.dimensions
        props["over"] = {
            "title": "over",
            "position": props["over"].get("position"),
            "description": 'Dimensions to fan out over: a list of values, or "*" for all.',
            "type": "object",
            "properties": {
                dim: {
                    "anyOf": [
                        {"const": "*"},
                        {"type": "array", "items": _value_schema(report, dim)},
                    ]
                }
                for dim in dims
            },
            "additionalProperties": False,
        }
        shared = parameters_schema(report)
        shared["required"] = []  # the rest come from `over`
        props["parameters"] = {
            **shared,
            "title": "parameters",
            "position": props["parameters"]["position"],
        }
    else:
        props["parameters"] = {
            **parameters_schema(report),
            "title": "parameters",
            "position": props["parameters"]["position"],
        }
        schema["required"] = sorted({*schema.get("required", []), "parameters"})
    return schema


def _value_schema(report, dim: str) -> dict[str, Any]:
    """One value of a batch dimension: its type, and its choices when it has some."""
    value = parameter_property(report, dim, report.spec.parameters[dim])
    if "enum" in value:
        return {"type": value["type"], "enum": value["enum"]}
    return {"type": value["type"]}


def ensure_infrastructure(client, result: DeployResult) -> None:
    try:
        client.read_work_pool(WORK_POOL)
        result.note(f"work pool {WORK_POOL}", "unchanged")
    except ObjectNotFound:
        client.create_work_pool(WorkPoolCreate(name=WORK_POOL, type="process"))
        result.note(f"work pool {WORK_POOL}", "created")
    existing = {q.name: q for q in client.read_work_queues(work_pool_name=WORK_POOL)}
    for queue in QUEUES:
        current = existing.get(queue.name)
        if current is None:
            client.create_work_queue(
                name=queue.name,
                work_pool_name=WORK_POOL,
                priority=queue.priority,
                description=queue.description,
            )
            result.note(f"queue {queue.name}", "created")
        elif current.priority != queue.priority or current.description != queue.description:
            client.update_work_queue(
                current.id, priority=queue.priority, description=queue.description
            )
            result.note(f"queue {queue.name}", "updated")
        else:
            result.note(f"queue {queue.name}", "unchanged")
    try:
        limit = client.read_global_concurrency_limit_by_name(SQL_SOURCE_LIMIT)
        result.note(
            f"limit {SQL_SOURCE_LIMIT}",
            "unchanged" if limit.limit == SQL_SOURCE_SLOTS else "updated",
        )
        if limit.limit != SQL_SOURCE_SLOTS:
            client.upsert_global_concurrency_limit_by_name(SQL_SOURCE_LIMIT, SQL_SOURCE_SLOTS)
    except ObjectNotFound:
        client.create_global_concurrency_limit(
            GlobalConcurrencyLimitCreate(name=SQL_SOURCE_LIMIT, limit=SQL_SOURCE_SLOTS)
        )
        result.note(f"limit {SQL_SOURCE_LIMIT}", "created")


def apply_deployment(
    client, spec: dict[str, Any], schedules_active: bool | None, result: DeployResult
) -> None:
    flow = load_flow_from_entrypoint(spec["entrypoint"])
    flow_id = client.create_flow_from_name(flow.name)
    full_name = f"{flow.name}/{spec['name']}"
    concurrency = spec.get("concurrency_limit")
    limit = concurrency.get("limit") if isinstance(concurrency, dict) else concurrency
    options = (
        ConcurrencyOptions(collision_strategy=concurrency["collision_strategy"])
        if isinstance(concurrency, dict) and concurrency.get("collision_strategy")
        else None
    )
    desired = dict(
        flow_id=flow_id,
        name=spec["name"],
        description=spec.get("description") or flow.description,
        parameters=spec.get("parameters") or {},
        work_pool_name=spec["work_pool"]["name"],
        work_queue_name=spec["work_pool"].get("work_queue_name"),
        tags=spec.get("tags") or [],
        entrypoint=spec["entrypoint"],
        parameter_openapi_schema=deployment_schema(spec),
        enforce_parameter_schema=spec.get("enforce_parameter_schema", True),
        concurrency_limit=limit,
        concurrency_options=options,
        job_variables=spec["work_pool"].get("job_variables") or {},
    )
    try:
        before = client.read_deployment_by_name(full_name)
    except ObjectNotFound:
        before = None
    # An upsert replaces the schedules, so always send the full set.
    schedules = _schedules(before, spec.get("schedules") or [], schedules_active)
    deployment_id = client.create_deployment(**desired, schedules=schedules)
    after = client.read_deployment(deployment_id)
    if before is None:
        result.note(f"deployment {full_name}", "created")
    elif _schedule_set(before) != _schedule_set(after) or _fingerprint(before) != _fingerprint(
        after
    ):
        result.note(f"deployment {full_name}", "updated")
    else:
        result.note(f"deployment {full_name}", "unchanged")


def _fingerprint(deployment) -> tuple:
    return (
        deployment.description,
        deployment.parameters,
        deployment.work_queue_name,
        sorted(deployment.tags),
        deployment.parameter_openapi_schema,
        deployment.entrypoint,
        deployment.enforce_parameter_schema,
        deployment.concurrency_limit,
    )


def _schedules(before, wanted: list[dict[str, Any]], active: bool | None):
    """The schedules to apply: each keeps its current on/off unless `active` says otherwise."""
    current = {
        (s.schedule.cron, s.schedule.timezone): s.active
        for s in (before.schedules if before else [])
        if isinstance(s.schedule, CronSchedule)
    }
    schedules = []
    for entry in wanted:
        key = (entry["cron"], entry.get("timezone"))
        is_active = active if active is not None else current.get(key, entry.get("active", True))
        schedules.append(
            DeploymentScheduleCreate(
                schedule=CronSchedule(cron=key[0], timezone=key[1]), active=is_active
            )
        )
    return schedules


def _schedule_set(deployment) -> set[tuple]:
    return {
        (s.schedule.cron, s.schedule.timezone, s.active)
        for s in deployment.schedules
        if isinstance(s.schedule, CronSchedule)
    }


def deploy(schedules_active: bool | None = None, path: Path = PREFECT_YAML) -> DeployResult:
    """Apply prefect.yaml and the objects it relies on to the active Prefect API."""
    from deployments.alerts import ensure_alerts
    from deployments.notifications import ensure_failure_notifications, webhook_block_id
    from deployments.worker import ensure_zombie_detection
    from reports.settings import get_settings

    result = DeployResult()
    specs = load_deployment_specs(path, skipped=result.skipped)
    webhook = get_settings().failure_webhook_url
    # A command may wait out a server that is busy: Prefect's usual retries, not a page's.
    with connect(ApiConfig.active(timeout_s=30, retries=3)) as api:
        client = api.client
        ensure_infrastructure(client, result)
        for spec in specs:
            try:
                apply_deployment(client, spec, schedules_active, result)
            except ReportError as exc:  # a broken report must not stop the good ones
                result.skipped.append(f"deployment {spec['name']}: {exc}")
        result.notes += _delivery_triggers(client, result)
        result.notes.append(ensure_zombie_detection(client))
        result.notes.append(
            ensure_failure_notifications(webhook.get_secret_value() if webhook else None, client)
        )
        # The alerts post through the same webhook block: none without a webhook.
        block_id = webhook_block_id(client) if webhook else None
        result.notes += ensure_alerts(client, block_id, get_settings())
    return result
