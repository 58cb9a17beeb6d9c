"""Tell a chat channel when a `report` or `batch` run ends Failed or Crashed.

Why an automation, not a hook in the flows: a flow's own `on_failure` hook never
runs when its process dies (Crashed: killed worker, out of memory, lost machine),
and it would tie the flows to a chat service. A Prefect automation lives in the
server instead: it hears the run's `prefect.flow-run.Failed` / `.Crashed` event
whatever happened to the process, and posts through a notification block, so the
flows stay free of alerting code and operators can see, pause or edit it in the UI.

`ensure_failure_notifications(url)` is what `reportrunner deploy` calls. It is
idempotent: it creates or updates one `CustomWebhookNotificationBlock` and one
automation, both found by name, and a second call with the same URL changes nothing.
With no URL it removes both, so that turning the setting off turns alerts off.

The message is `{"text": "…"}` (Slack incoming webhooks and Teams connectors both read
`text`). The server renders it from the run that failed: flow, run name, final state,
error (the state message), report and parameters, and a link to the run in the UI.
The webhook URL is kept in the block's secrets (shown masked in the UI, never logged).

The block is shared: the alert automations of `deployments/alerts.py` post through it
too (`webhook_block_id`), so one setting turns every message on or off.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reports.contracts import DELIVER_FLOW, REPORT_FLOWS

if TYPE_CHECKING:
    from uuid import UUID

    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.events.schemas.automations import AutomationCore

__all__ = [
    "AUTOMATION_NAME",
    "BLOCK_NAME",
    "WATCHED_FLOWS",
    "ensure_failure_notifications",
    "webhook_block_id",
]

BLOCK_NAME = "reportrunner-failures"
AUTOMATION_NAME = "reportrunner-failed-runs"
WATCHED_FLOWS = (*REPORT_FLOWS, DELIVER_FLOW)  # a failed send alerts like a failed render
_EVENTS = ("prefect.flow-run.Failed", "prefect.flow-run.Crashed")
_SECRET_KEY = "webhook_url"

# Templates the server renders with the triggering event's objects (see
# prefect/server/events/actions.py, JinjaTemplateAction): `flow_run` is the run read
# back from the API with its state rebuilt from the event (so `flow_run.state.message`
# is the final state's message), `flow` the flow it belongs to; `ui_url` is a filter
# of prefect/server/events/jinja_filters.py. Missing values render empty
# (ChainableUndefined). Parameters are read with `p.get('…')`: `p.items` and even
# `p['items']` (Jinja falls back to attributes) would be the dict method, not the
# `items` parameter of a batch.
_SUBJECT = "reportrunner: {{ flow.name }} `{{ flow_run.name }}` {{ flow_run.state.name }}"
_BODY = """\
{{ (flow_run.state.message or 'no message') | truncate(600) }}
{% set p = flow_run.parameters or {} %}{% set line %}report: {{ p.get('report') or '?' }}
{%- if p.get('parameters') %} · parameters: {% for k, v in p.get('parameters').items() -%}
  {{ k }}={{ v }}{{ ', ' if not loop.last }}{% endfor %}{% endif %}
{%- if p.get('over') %} · over: {% for k, v in p.get('over').items() -%}
  {{ k }}={{ (v if v is string else v | join(',')) | truncate(80) }}{{ '; ' if not loop.last }}
  {%- endfor %}{% endif %}
{%- if p.get('items') %} · {{ p.get('items') | length }} items{% endif %}{% endset %}\
{{ line | truncate(500) }}
{% set link = flow_run | ui_url %}{% if link %}{{ link }}{% else %}FALLBACK_LINK{% endif %}"""


def ensure_failure_notifications(webhook_url: str | None, client: Any = None) -> str:
    """Make failed/crashed `report` and `batch` runs post to `webhook_url`; None removes that.

    `client`: a Prefect sync client (`prefect_api.connect(...).client`); without one, a
    connection to the active API is opened. Returns one line saying what changed, for
    the deploy summary; the URL itself is never part of it.
    """
    if client is None:
        from prefect_api import ApiConfig, connect

        with connect(ApiConfig.active(timeout_s=30, retries=3)) as api:
            return _ensure(api.client, webhook_url)
    return _ensure(client, webhook_url)


def _ensure(client: Any, webhook_url: str | None) -> str:
    automations = client.read_automations_by_name(AUTOMATION_NAME)
    if not webhook_url:
        for automation in automations:
            client.delete_automation(automation.id)
        removed_block = _delete_block(client)
        if automations or removed_block:
            return f"failure notifications: no webhook set; removed {AUTOMATION_NAME!r}"
        return "failure notifications: no webhook set; none configured"

    block_id, block_changed = _save_block(webhook_url)
    desired = _automation(block_id)
    for extra in automations[1:]:  # self-heal duplicates made by hand
        client.delete_automation(extra.id)
    if not automations:
        client.create_automation(desired)
        return f"failure notifications: created {AUTOMATION_NAME!r} → block {BLOCK_NAME!r}"
    current = automations[0]
    if _comparable(current) != _comparable(desired):
        client.update_automation(current.id, desired)
        return f"failure notifications: updated {AUTOMATION_NAME!r}"
    if block_changed or len(automations) > 1:
        return f"failure notifications: updated {BLOCK_NAME!r}"
    return f"failure notifications: {AUTOMATION_NAME!r} unchanged"


def _block(webhook_url: str) -> CustomWebhookNotificationBlock:
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    return CustomWebhookNotificationBlock(
        name="reportrunner",
        url="{{" + _SECRET_KEY + "}}",  # filled in from the secrets when sending
        method="POST",
        json_data={"text": "{{subject}}\n{{body}}"},
        secrets={_SECRET_KEY: webhook_url},
    )


def _save_block(webhook_url: str) -> tuple[Any, bool]:
    """The block's document id, and whether it had to be written."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    desired = _block(webhook_url)
    try:
        current = CustomWebhookNotificationBlock.load(BLOCK_NAME)
    except ValueError:  # no such block yet
        current = None
    if current is not None and _fields(current) == _fields(desired):
        return current._block_document_id, False
    return desired.save(BLOCK_NAME, overwrite=True), True


def _fields(block: CustomWebhookNotificationBlock) -> dict[str, Any]:
    # Secrets compare by value; a loaded block's dump also carries its document id.
    return {name: getattr(block, name) for name in type(block).model_fields}


def webhook_block_id(client: SyncPrefectClient) -> UUID | None:
    """The id of the webhook block every reportrunner message posts through; None when
    there is none (no webhook set). One call."""
    document = _read_block_document(client)
    return document.id if document is not None else None


def _read_block_document(client: SyncPrefectClient) -> Any:
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.exceptions import ObjectNotFound

    slug = CustomWebhookNotificationBlock.get_block_type_slug()
    try:
        return client.read_block_document_by_name(BLOCK_NAME, block_type_slug=slug)
    except ObjectNotFound:
        return None


def _delete_block(client: SyncPrefectClient) -> bool:
    document = _read_block_document(client)
    if document is None:
        return False
    client.delete_block_document(document.id)
    return True


def _automation(block_id: Any) -> AutomationCore:
    from prefect.events.actions import SendNotification
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
    from prefect.settings import PREFECT_UI_URL

    # The server's `ui_url` filter needs PREFECT_UI_URL on the server; when the server
    # does not know its address, fall back to the UI address known here.
    fallback = (PREFECT_UI_URL.value() or "").rstrip("/")
    fallback_link = f"{fallback}/runs/flow-run/{{{{ flow_run.id }}}}" if fallback else ""
    return AutomationCore(
        name=AUTOMATION_NAME,
        description=(
            "Posts failed or crashed report, batch and delivery runs to the reportrunner webhook. "
            "Managed by `reportrunner deploy`: edits here are overwritten."
        ),
        enabled=True,
        trigger=EventTrigger(
            expect=set(_EVENTS),
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={
                "prefect.resource.role": "flow",
                "prefect.resource.id": "prefect.flow.*",
                "prefect.resource.name": list(WATCHED_FLOWS),
            },
            for_each={"prefect.resource.id"},
            posture=Posture.Reactive,
            threshold=1,
            within=0,
        ),
        actions=[
            SendNotification(
                block_document_id=block_id,
                subject=_SUBJECT,
                body=_BODY.replace("FALLBACK_LINK", fallback_link),
            )
        ],
    )


def _comparable(automation: AutomationCore) -> dict[str, Any]:
    """The fields this module manages, normalised so that equal means 'no update needed'."""
    from prefect.events.schemas.automations import AutomationCore

    core = AutomationCore.model_validate(automation.model_dump(include=_MANAGED))
    data = core.model_dump(mode="json", include=_MANAGED)
    data["trigger"]["expect"] = sorted(data["trigger"]["expect"])
    data["trigger"]["for_each"] = sorted(data["trigger"]["for_each"])
    return data


_MANAGED = {"name", "description", "enabled", "trigger", "actions"}
