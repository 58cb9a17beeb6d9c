"""The `deliver` flow: one subscription's run.

    resolve recipients (bursting) → render what is missing or changed (a batch subflow,
    which skips current items) → plan: queued / held / skipped per recipient and item,
    in the ledger → send, writing the ledger before and after each send → summarize

A progress artifact reads "N of M sent, K failed, H held". The run ends Failed when
any send failed (or an item could not render), so the failure webhook hears of it:
delivery never fails silently. Re-running sends only what is not yet `sent`.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from prefect.states import Completed, Failed

from flows.batch_flow import batch, same_day_in
from flows.items import resolve_relative
from flows.parameters import AsOfYear, ReportName
from reports import OutputStore, get_settings
from reports.contracts import DELIVER_FLOW, DELIVERY_PROGRESS, DELIVERY_SUMMARY, artifact_key
from reports.definitions import default_catalog
from reports.delivery import (
    DeliveryCounts,
    Ledger,
    Planned,
    get_subscription,
    make_channel,
    plan_deliveries,
    resolve_recipients,
    send_planned,
)
from reports.index import open_index

PROGRESS_EVERY_S = 2.0


def _run_name() -> str:
    return f"deliver {flow_run.parameters['subscription']}"


@flow(name=DELIVER_FLOW, flow_run_name=_run_name, persist_result=False)
def deliver(
    subscription: ReportName,
    dry_run: bool = False,
    render: bool = True,
    as_of: dt.date | None = None,
    as_of_year: AsOfYear | None = None,
) -> dict[str, Any]:
    """Send `subscription`'s reports to its recipients; only what they do not have yet.

    dry_run: plan and list who would get what, send nothing, write no ledger rows.
    render: render missing or changed items first (a batch; current items are skipped).
    as_of: the date relative parameters (`previous` month) resolve against.
    as_of_year: resolve them as if that date were in this year (the demo data is 2013's).
    """
    logger = get_run_logger()
    settings = get_settings()
    sub = get_subscription(settings.deliveries_dir, subscription)
    report = default_catalog().get(sub.report)
    reference = as_of or (flow_run.scheduled_start_time or dt.datetime.now(dt.UTC)).date()
    if as_of_year or sub.as_of_year:
        reference = same_day_in(reference, as_of_year or sub.as_of_year)
    fixed = {k: resolve_relative(report, k, v, reference) for k, v in sub.parameters.items()}
    recipients = resolve_recipients(sub, report)
    items = list(
        {
            str(sorted(p.items())): p
            for p in (report.in_spec_order({**fixed, **r.params}) for r in recipients)
        }.values()
    )
    logger.info(
        "%s: %d recipients, %d distinct %s items",
        sub.name,
        len(recipients),
        len(items),
        report.name,
    )
    if render and not dry_run and items:
        rendered = batch(report=report.name, items=items, chunk_runs="local", return_state=True)
        logger.info("render: %s", rendered.message or rendered.name)

    store = OutputStore(settings.resolved_output_url)
    ledger = Ledger(open_index())
    run_id = str(flow_run.id) if flow_run.id else None
    plan = plan_deliveries(
        sub, report, recipients, fixed, store, ledger, run_id=run_id, write=not dry_run
    )
    if dry_run:
        for line in describe_plan(plan):
            logger.info(line)
        return {"subscription": sub.name, "dry_run": True, "plan": describe_plan(plan)}

    counts = _send(sub, report, plan, store, ledger, run_id)
    table = "\n".join(describe_plan(_reread(plan, ledger)))
    create_markdown_artifact(
        key=artifact_key(sub.name, DELIVERY_SUMMARY),
        markdown=f"# {sub.name}: {counts.sentence()}\n\n```\n{table}\n```",
        description=counts.sentence(),
    )
    result = {"subscription": sub.name, **counts.__dict__}
    logger.info("%s: %s", sub.name, counts.sentence())
    if counts.failed:
        return Failed(message=f"{sub.name}: {counts.sentence()}", data=result)
    return Completed(message=counts.sentence(), data=result)


@task(name="send", cache_policy=NO_CACHE, persist_result=False)
def _send(sub, report, plan: list[Planned], store, ledger, run_id) -> DeliveryCounts:
    artifact = create_progress_artifact(
        0, key=artifact_key(sub.name, DELIVERY_PROGRESS), description="planning"
    )
    last = [0.0]

    def progress(counts: DeliveryCounts) -> None:
        done = counts.sent + counts.already + counts.failed + counts.held + counts.skipped
        final = done >= counts.total
        if not final and time.monotonic() - last[0] < PROGRESS_EVERY_S:
            return
        last[0] = time.monotonic()
        percent = 100.0 if not counts.total else round(100 * done / counts.total, 1)
        update_progress_artifact(artifact, percent, description=counts.sentence())

    return send_planned(
        sub, report, plan, make_channel(sub), store, ledger, run_id=run_id, on_progress=progress
    )


def _reread(plan: list[Planned], ledger: Ledger) -> list[Planned]:
    rows = ledger.get([p.row.delivery_id for p in plan])
    return [
        Planned(rows.get(p.row.delivery_id, p.row), p.recipient, p.params, p.manifest) for p in plan
    ]


def describe_plan(plan: list[Planned]) -> list[str]:
    """One line per recipient and item: failures and holds first."""
    order = {"failed": 0, "held": 1, "queued": 2, "approved": 2, "sending": 2, "sent": 3}
    lines = []
    for p in sorted(plan, key=lambda p: (order.get(p.row.status, 4), p.recipient.address)):
        why = p.row.last_error if p.row.status == "failed" else p.row.reason
        line = f"{p.row.status:<9} {p.recipient.address:<32} {p.row.key}"
        lines.append(line + (f"  ({why})" if why else ""))
    return lines
