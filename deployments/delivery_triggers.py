"""Subscriptions with `trigger: after-batch`: a delivery run after each batch of the report.

A Prefect automation per such subscription (native: visible and editable in the
Prefect UI, managed by `reportrunner deploy`) starts its `deliver/<name>` deployment
when a `batch` flow run of the subscription's report ends Completed or Failed (a
batch with one failed item still has the others to deliver). Batch runs are named
`<report> batch over …` (`reports.contracts.batch_run_name`), from a deployment or
the CLI alike, which is what the trigger matches on.
"""

from __future__ import annotations

from typing import Any

from prefect.exceptions import ObjectNotFound

from reports.contracts import BATCH_FLOW, DELIVER_FLOW, deployment_name

PREFIX = "reportrunner: deliver "


def automation_name(subscription: str, report: str) -> str:
    return f"{PREFIX}{subscription} after {report} batches"


def _automation(subscription: Any, deployment_id: Any):
    from prefect.events.actions import RunDeployment
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    return AutomationCore(
        name=automation_name(subscription.name, subscription.report),
        description=(
            f"Runs deliver/{subscription.name} when a {subscription.report} batch ends. "
            "Managed by `reportrunner deploy` from deliveries/: edits here are overwritten."
        ),
        enabled=True,
        trigger=EventTrigger(
            expect={"prefect.flow-run.Completed", "prefect.flow-run.Failed"},
            match={
                "prefect.resource.id": "prefect.flow-run.*",
                "prefect.resource.name": f"{subscription.report} batch*",
            },
            match_related={"prefect.resource.role": "flow", "prefect.resource.name": BATCH_FLOW},
            posture=Posture.Reactive,
            threshold=1,
            within=0,
        ),
        actions=[RunDeployment(source="selected", deployment_id=deployment_id, parameters={})],
    )


def ensure_delivery_triggers(client: Any, subscriptions: list[Any]) -> list[str]:
    """Create, update or remove the after-batch automations; one note per change."""
    notes = []
    wanted = {}
    for subscription in subscriptions:
        if subscription.trigger != "after-batch":
            continue
        try:
            deployment = client.read_deployment_by_name(
                deployment_name(DELIVER_FLOW, subscription.name)
            )
        except ObjectNotFound:  # its deployment could not be applied: said in `skipped`
            continue
        wanted[automation_name(subscription.name, subscription.report)] = _automation(
            subscription, deployment.id
        )
    existing = [a for a in client.read_automations() if a.name.startswith(PREFIX)]
    for automation in existing:
        if automation.name not in wanted:
            client.delete_automation(automation.id)
            notes.append(f"delivery trigger: removed {automation.name!r}")
    by_name = {a.name: a for a in existing}
    for name, desired in wanted.items():
        current = by_name.get(name)
        if current is None:
            client.create_automation(desired)
            notes.append(f"delivery trigger: created {name!r}")
        elif _same(current, desired):
            notes.append(f"delivery trigger: {name!r} unchanged")
        else:
            client.update_automation(current.id, desired)
            notes.append(f"delivery trigger: updated {name!r}")
    return notes


def _same(current: Any, desired: Any) -> bool:
    fields = {"name", "description", "enabled", "trigger", "actions"}
    return current.model_dump(mode="json", include=fields) == desired.model_dump(
        mode="json", include=fields
    )
