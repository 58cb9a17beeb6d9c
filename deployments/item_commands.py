"""The CLI's commands about report items and their delivery.

reportrunner items carrier=AA [--report R] [--status failed] [--json]
reportrunner deliver carrier-contacts [--dry-run] [--as-of 2013-08-02]
reportrunner deliveries [--failed] [--subscription S] [--recipient R] [--json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from dataclasses import asdict

from deployments.cli_errors import CliError, require_api


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "–"
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M")


def cmd_items(args: argparse.Namespace) -> int:
    from reports.contracts import status_label
    from reports.index import ItemQuery, SearchError, open_index, search_items

    query = ItemQuery(
        text=" ".join(args.search),
        report=args.report,
        statuses=tuple(args.status or ()),
        limit=args.limit,
    )
    try:
        found = search_items(open_index(), query)
    except SearchError as exc:
        raise CliError(f"search: {exc}") from exc
    if args.json:
        print(json.dumps({"total": found.total, "items": [asdict(r) for r in found.rows]}))
        return 0
    for row in found.rows:
        line = f"{status_label(row.status):<14} {row.report} {row.label}  ({_when(row.updated_at)})"
        print(line + (f"  {row.error}" if row.error else ""))
    more = found.total - len(found.rows)
    noun = "item" if found.total == 1 else "items"
    hint = f" ({more:,} more: narrow the search or raise --limit)" if more > 0 else ""
    print(f"{found.total:,} {noun}{hint}")
    return 0


def cmd_deliver(args: argparse.Namespace) -> int:
    from flows import deliver

    api_url = require_api()
    as_of = dt.date.fromisoformat(args.as_of) if args.as_of else None
    state = deliver(
        subscription=args.subscription,
        dry_run=args.dry_run,
        render=not args.no_render,
        as_of=as_of,
        return_state=True,
    )
    result = state.result(raise_on_failure=False)
    if isinstance(result, BaseException):
        raise result  # could not start: unknown subscription, bad recipients file
    if args.dry_run:
        for line in result["plan"]:
            print(line)
        print(f"{len(result['plan'])} deliveries planned; nothing sent (--dry-run)")
        return 0
    print(f"{args.subscription}: {state.message}")
    print(
        f"flow run: {api_url.removesuffix('/api')}/runs/flow-run/{state.state_details.flow_run_id}"
    )
    return 1 if result["failed"] else 0


def cmd_deliveries(args: argparse.Namespace) -> int:
    from reports.delivery import Ledger
    from reports.index import open_index

    rows, total = Ledger(open_index()).rows(
        subscription=args.subscription,
        statuses=("failed",) if args.failed else tuple(args.status or ()),
        recipient=args.recipient,
        item=args.item,
        limit=args.limit,
    )
    if args.json:
        print(json.dumps({"total": total, "rows": [asdict(r) for r in rows]}))
        return 0
    for row in rows:
        why = row.last_error if row.status == "failed" else row.reason
        print(
            f"{row.status:<9} {_when(row.updated_at)}  {row.subscription}  {row.recipient}  "
            f"{row.key}  attempts {row.attempts}" + (f"  ({why})" if why else "")
        )
    print(f"{total:,} ledger rows" + (f" (showing {len(rows)})" if total > len(rows) else ""))
    return 0


def add_parsers(sub) -> None:
    p = sub.add_parser("items", help="find report items by business key, e.g. carrier=AA")
    p.add_argument("search", nargs="*", help="name=value (exact) or a bare value, combined")
    p.add_argument("--report", help="only this report's items")
    p.add_argument(
        "--status",
        action="append",
        help="only this status (repeat): rendered, unchanged, flagged, failed, running, pending",
    )
    p.add_argument("--limit", type=int, default=50, help="items to list (default 50)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_items)

    p = sub.add_parser("deliver", help="send a subscription's reports (renders what is missing)")
    p.add_argument("subscription", help="a subscription in deliveries/")
    p.add_argument("--dry-run", action="store_true", help="list who would get what; send nothing")
    p.add_argument("--as-of", help="date that relative parameters resolve against (YYYY-MM-DD)")
    p.add_argument("--no-render", action="store_true", help="send what exists; render nothing")
    p.set_defaults(func=cmd_deliver)

    p = sub.add_parser("deliveries", help="the delivery ledger: who got what, what failed")
    p.add_argument("--failed", action="store_true", help="only failed deliveries")
    p.add_argument("--status", action="append", help="only this status (repeat)")
    p.add_argument("--subscription", help="only this subscription")
    p.add_argument("--recipient", help="recipients containing this text")
    p.add_argument("--item", help="items containing this text, e.g. carrier=AA")
    p.add_argument("--limit", type=int, default=100, help="rows to list (default 100)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_deliveries)
