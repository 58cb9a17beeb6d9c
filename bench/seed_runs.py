"""Seed a Prefect database with many finished flow runs, as a long history looks.

Runs are written straight into the server's database with Prefect's own table
definitions (the API cannot backdate start and end times), so a history of 10,000 runs
over a week takes seconds, not the hours real runs would. Point PREFECT_HOME (and
PREFECT_SERVER_DATABASE_CONNECTION_URL for PostgreSQL) at the server's settings;
the flows, deployments and the work pool must exist (see `ensure_objects`).

The mix follows a week of reportrunner use: report runs of three reports (most of
them), batches with their chunk subflows, ~8 % failures in a few error families,
some crashes and cancellations, and a few runs still active in the last hour.

Usage (the server must be running, or at least have created its database):
    PREFECT_HOME=<server home> .venv/bin/python bench/seed_runs.py --runs 10000 --days 7
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

REPORTS = {
    "carrier-monthly": ("carrier", ["AA", "B6", "DL", "EV", "UA", "US", "WN", "9E", "MQ"]),
    "airport-daily": ("origin", ["EWR", "JFK", "LGA"]),
    "destination-quarterly": ("dest", ["ATL", "ORD", "LAX", "BOS", "MCO", "SFO"]),
}
_STATE_NAMES = {
    "COMPLETED": "Completed",
    "FAILED": "Failed",
    "CRASHED": "Crashed",
    "CANCELLED": "Cancelled",
    "RUNNING": "Running",
    "SCHEDULED": "Scheduled",
    "PENDING": "Pending",
}
FAILURES = [
    "{report}: data: source 'flights' unreachable: connection reset by peer (attempt 3 of 3)",
    "{report}: quality: table 'flights' has 0 rows for {key}={value}",
    "{report}: render timed out after 120 s",
    "{report}: parameter '{key}': '{value}' is not one of the choices",
]


def plan_runs(count: int, days: float, now: datetime, seed: int = 7) -> list[dict[str, Any]]:
    """Deterministic run descriptions: flow, deployment, name, parameters, state and times."""
    rng = random.Random(seed)
    runs = []
    for _ in range(count):
        report = rng.choice(list(REPORTS))
        key, values = REPORTS[report]
        value = rng.choice(values)
        month = f"2013-{rng.randint(1, 12):02d}"
        roll = rng.random()
        if roll < 0.75:
            flow, deployment = "report", report
            name = f"{report} {key}={value} month={month}"
            params = {"report": report, "parameters": {key: value, "month": month}}
            seconds = rng.lognormvariate(0.7, 0.35)
        elif roll < 0.93:
            flow, deployment = "render-chunk", "render-chunk"
            name = f"{report} chunk of 48"
            params = {"report": report, "items": []}
            seconds = rng.lognormvariate(3.2, 0.25)
        else:
            flow, deployment = "batch", f"{report}-batch"
            name = f"{report} batch over {key} × month"
            params = {"report": report, "over": {key: "*", "month": [month]}}
            seconds = rng.lognormvariate(4.3, 0.25)
        if rng.random() < 0.01:
            seconds *= 8  # the odd run that is much slower than usual
        start = now - timedelta(seconds=rng.uniform(0, days * 86400))
        state, message = _final_state(rng, report, key, value)
        if now - start < timedelta(hours=1) and rng.random() < 0.02:
            state, message = rng.choice(["RUNNING", "SCHEDULED", "PENDING"]), None
        runs.append(
            {
                "flow": flow,
                "deployment": deployment,
                "name": name,
                "parameters": params,
                "tags": ["reportrunner", f"report:{report}", "seeded"],
                "state": state,
                "message": message,
                "start": start,
                "seconds": seconds,
            }
        )
    return runs


def _final_state(rng: random.Random, report: str, key: str, value: str) -> tuple[str, str | None]:
    roll = rng.random()
    if roll < 0.08:
        text = rng.choice(FAILURES).format(report=report, key=key, value=value)
        return "FAILED", text
    if roll < 0.10:
        return "CRASHED", "Flow run infrastructure exited with non-zero status code -9."
    if roll < 0.13:
        return "CANCELLED", "Cancelled by an operator."
    return "COMPLETED", "All states completed."


def ensure_objects(client, pool: str = "reports") -> dict[str, UUID]:
    """Flows, deployments and the work pool the seeded runs point at; deployment ids by name."""
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists

    with contextlib.suppress(ObjectAlreadyExists):
        client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
    ids = {}
    for flow_name, deployments in {
        "report": list(REPORTS),
        "batch": [f"{r}-batch" for r in REPORTS],
        "render-chunk": ["render-chunk"],
    }.items():
        flow_id = client.create_flow_from_name(flow_name)
        for name in deployments:
            ids[name] = client.create_deployment(
                flow_id=flow_id, name=name, work_pool_name=pool, work_queue_name="default"
            )
    return ids


async def _write(plans: list[dict[str, Any]], deployment_ids: dict[str, UUID], batch: int) -> None:
    """Bulk INSERTs of runs and their current states (no orchestration: nothing to decide)."""
    import sqlalchemy as sa
    from prefect.server import models
    from prefect.server.database import provide_database_interface

    db = provide_database_interface()
    async with db.session_context(begin_transaction=True) as session:
        flows = {}
        for name in {p["flow"] for p in plans}:
            flows[name] = (await models.flows.read_flow_by_name(session=session, name=name)).id
    for first in range(0, len(plans), batch):
        runs, states = [], []
        for plan in plans[first : first + batch]:
            run_id, state_id = uuid4(), uuid4()
            active = plan["state"] in {"RUNNING", "SCHEDULED", "PENDING"}
            end = plan["start"] + timedelta(seconds=plan["seconds"])
            moment = plan["start"] if active else end
            name = _STATE_NAMES[plan["state"]]
            states.append(
                {
                    "id": state_id,
                    "flow_run_id": run_id,
                    "type": plan["state"],
                    "name": name,
                    "timestamp": moment,
                    "message": plan["message"],
                    "state_details": {"flow_run_id": str(run_id)},
                }
            )
            runs.append(
                {
                    "id": run_id,
                    "flow_id": flows[plan["flow"]],
                    "deployment_id": deployment_ids[plan["deployment"]],
                    "name": plan["name"],
                    "parameters": plan["parameters"],
                    "tags": plan["tags"],
                    "state_type": plan["state"],
                    "state_name": name,
                    "state_timestamp": moment,
                    "run_count": 0 if plan["state"] in {"SCHEDULED", "PENDING"} else 1,
                    "expected_start_time": plan["start"],
                    "start_time": None
                    if plan["state"] in {"SCHEDULED", "PENDING"}
                    else plan["start"],
                    "end_time": None if active else end,
                    "total_run_time": timedelta(seconds=0 if active else plan["seconds"]),
                }
            )
        async with db.session_context(begin_transaction=True) as session:
            # Runs and states point at each other: runs first, then states, then the link.
            await session.execute(sa.insert(db.FlowRun), runs)
            await session.execute(sa.insert(db.FlowRunState), states)
            table = db.FlowRun.__table__
            link = (
                sa.update(table)
                .where(table.c.id == sa.bindparam("run"))
                .values(state_id=sa.bindparam("state"), updated=sa.bindparam("now"))
            )
            now = datetime.now(UTC)
            links = [{"run": s["flow_run_id"], "state": s["id"], "now": now} for s in states]
            await session.execute(link, links)


def seed(count: int, days: float, deployment_ids: dict[str, UUID], batch: int = 500) -> float:
    """Write `count` runs; returns the seconds it took."""
    started = time.perf_counter()
    asyncio.run(_write(plan_runs(count, days, datetime.now(UTC)), deployment_ids, batch))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--days", type=float, default=7.0)
    args = parser.parse_args()
    from prefect import get_client

    with get_client(sync_client=True) as client:
        ids = ensure_objects(client)
    took = seed(args.runs, args.days, ids)
    print(f"seeded {args.runs:,} flow runs over {args.days:g} days in {took:.1f} s")


if __name__ == "__main__":
    main()
