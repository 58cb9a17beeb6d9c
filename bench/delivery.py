"""Delivery of 192 items to 16 recipients: messages per second and ledger writes per message.

Sets up, in a temporary folder, an output store with one carrier-monthly item per
carrier and month of 2013 (16 × 12 = 192): one real PDF is rendered
(`reports.render_report`, carrier AA, 2013-01) and written as every item's output,
each copy made distinct by a trailing PDF comment naming its item, under a manifest
of the shape `reports.render.publish` writes (its own fingerprint, sha256 and size),
so the bench measures delivery, not rendering. 16 recipients (one per carrier,
example.com addresses) burst by carrier, each on 12 rows (one per month): one plan of
192 (recipient, item) pairs. Mail goes over SMTP to an in-process `SmtpSink` on a free
port; the ledger lives in a temporary item index: a SQLite file, and a scratch
PostgreSQL database when one answers (dropped afterwards).

For each backend, each repetition (backends alternate, so noise hits both alike):

  cold      resolve + plan + send every item: one message per item (192)
  re-run    the same subscription again, nothing changed: plan + send, nothing to send
  digest    another subscription with `digest: true`: one message per recipient with
            their 12 PDFs attached (16 messages)
  ledger    a third subscription planned, then only the ledger's writes around each
            send (`sending`, `sent`) without SMTP: what the ledger alone costs

Ledger statements are the SQL statements sent on `ledger.index.engine` (SQLAlchemy's
`before_cursor_execute`; an executemany counts once); writes are its INSERTs and
UPDATEs, transactions its commits. Planning also reads each item's render history
(`item_history`, for the `hold.pages_factor` condition) through the same engine:
counted, and shown apart. The per-message split of a send comes from timing the
channel's `send` (of which `build_message`, the MIME encoding) and the ledger's
`sending`/`sent` calls; "other" is the rest (reading the PDFs, the bodies' templates).
The sink runs in this process (its own thread), so its work is in the SMTP time.

Usage: .venv/bin/python bench/delivery.py [--carriers 16] [--months 12] [--repeat 5]
           [--backends sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from _machine import core_speed  # bench/_machine.py, beside this script

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from reports.delivery import (  # noqa: E402 - after the path set-up
    Ledger,
    Subscription,
    plan_deliveries,
    resolve_recipients,
    send_planned,
)
from reports.delivery._email import EmailChannel, SmtpSettings  # noqa: E402

REPORT = "carrier-monthly"
POSTGRES_ADMIN_URL = os.environ.get(
    "REPORTRUNNER_BENCH_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)


# ---- counting and timing -----------------------------------------------------------------


class Statements:
    """SQL statements and commits on an engine, by kind (an executemany counts once)."""

    def __init__(self, engine) -> None:
        from sqlalchemy import event

        self.kinds: Counter[str] = Counter()
        event.listen(engine, "before_cursor_execute", self._seen)
        event.listen(engine, "commit", self._committed)

    def _seen(self, _conn, _cursor, statement, _parameters, _context, _executemany) -> None:
        verb = statement.lstrip().split(None, 1)[0].upper()
        if verb in ("INSERT", "UPDATE", "DELETE"):
            self.kinds["write"] += 1
        elif "rr_deliveries" in statement:
            self.kinds["ledger read"] += 1
        else:
            self.kinds["other read"] += 1  # item_history: rr_items, rr_renders

    def _committed(self, _conn) -> None:
        self.kinds["commit"] += 1

    def snapshot(self) -> Counter[str]:
        return Counter(self.kinds)


class TimedLedger(Ledger):
    """The ledger, with the seconds spent in its calls added up."""

    seconds: float = 0.0

    def _timed(self, method, *args, **kwargs):
        started = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - started

    def plan(self, *args, **kwargs):
        return self._timed(super().plan, *args, **kwargs)

    def sending(self, *args, **kwargs):
        return self._timed(super().sending, *args, **kwargs)

    def sent(self, *args, **kwargs):
        return self._timed(super().sent, *args, **kwargs)

    def failed(self, *args, **kwargs):
        return self._timed(super().failed, *args, **kwargs)

    def get(self, *args, **kwargs):
        return self._timed(super().get, *args, **kwargs)

    def last_sent(self, *args, **kwargs):
        return self._timed(super().last_sent, *args, **kwargs)


class TimedEmailChannel(EmailChannel):
    """The email channel, with the seconds of its sends and of their MIME building."""

    send_s: float = 0.0
    build_s: float = 0.0
    attachments: tuple[int, ...] = ()

    def build_message(self, envelope):
        started = time.perf_counter()
        message = super().build_message(envelope)
        self.build_s += time.perf_counter() - started
        return message

    def send(self, envelope):
        started = time.perf_counter()
        try:
            return super().send(envelope)
        finally:
            self.send_s += time.perf_counter() - started
            self.attachments += (len(envelope.attachments),)


# ---- set-up ------------------------------------------------------------------------------


def items_of(report, carriers: int, months: int) -> list[dict]:
    return [
        report.validate({"carrier": carrier, "month": f"2013-{month:02d}"})
        for carrier in report.choices("carrier")[:carriers]
        for month in range(1, months + 1)
    ]


def seed_store(report, store, work: Path, items: list[dict]) -> dict:
    """One real render, written as every item's output with its own manifest."""
    from reports.render import render_report
    from reports.store import OutputStore

    rendered = OutputStore(str(work / "rendered"))
    started = time.perf_counter()
    real = render_report(report, {"carrier": "AA", "month": "2013-01"}, rendered)
    render_s = time.perf_counter() - started
    pdf_entry = next(f for f in real["files"] if f["name"].endswith(".pdf"))
    pdf = rendered.read_bytes(pdf_entry["path"])
    started = time.perf_counter()
    for params in items:
        item_dir = store.item_dir(report.name, params)
        name = f"{store.file_stem(report.name, params)}.pdf"
        key = ",".join(f"{k}={v}" for k, v in params.items())
        payload = pdf + f"% bench copy for {key}\n".encode()  # after %%EOF: readers ignore it
        path = f"{item_dir}/{name}"
        store.write_bytes(path, payload)
        digest = hashlib.sha256(payload).hexdigest()
        manifest = {
            **{k: v for k, v in real.items() if k not in ("skipped", "files")},
            "parameters": params,
            "fingerprint": hashlib.sha256(f"{real['fingerprint']}/{key}".encode()).hexdigest(),
            "data_fingerprint": hashlib.sha256(
                f"{real['data_fingerprint']}/{key}".encode()
            ).hexdigest(),
            "files": [{"name": name, "path": path, "bytes": len(payload), "sha256": digest}],
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "item_dir": item_dir,
        }
        store.write_manifest(item_dir, manifest)
    return {
        "render_s": render_s,
        "write_s": time.perf_counter() - started,
        "pdf_bytes": len(pdf),
        "pages": real["pages"],
    }


def recipient_rows(report, carriers: int, months: int) -> list[dict]:
    """One row per recipient and month: each recipient gets their carrier's 12 items."""
    return [
        {
            "email": f"ops-{carrier.lower()}@example.com",
            "name": f"{carrier} operations",
            "carrier": carrier,
            "month": f"2013-{month:02d}",
        }
        for carrier in report.choices("carrier")[:carriers]
        for month in range(1, months + 1)
    ]


def subscription(name: str, rows: list[dict], digest: bool = False) -> Subscription:
    return Subscription(
        name=name,
        report=REPORT,
        parameters={},
        recipients={"list": rows, "address": "email", "name": "name"},
        channel={"kind": "email"},
        conditions={"digest": digest},
        folder=None,
    )


def postgres_scratch():
    """A new PostgreSQL database (its URL and a function that drops it), or None."""
    import sqlalchemy as sa

    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect():
            pass
    except sa.exc.OperationalError:
        admin.dispose()
        return None
    name = f"reportrunner_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return admin.url.set(database=name).render_as_string(hide_password=False), drop


# ---- one delivery run --------------------------------------------------------------------


@dataclass
class Run:
    messages: int
    plan_s: float
    send_s: float
    smtp_s: float  # channel.send minus the MIME building
    build_s: float
    cpu_s: float  # this process's CPU time, plan + send (the in-process sink included)
    ledger_send_s: float  # the ledger's calls while sending
    plan_stmts: Counter[str]
    send_stmts: Counter[str]
    counts: dict = field(default_factory=dict)
    attachments: str = ""  # per message: "12", or "11–12" when they differ

    @property
    def wall_s(self) -> float:
        return self.plan_s + self.send_s

    @property
    def stmts(self) -> Counter[str]:
        return self.plan_stmts + self.send_stmts

    @property
    def other_s(self) -> float:
        return self.send_s - self.smtp_s - self.build_s - self.ledger_send_s


def deliver(sub, report, store, ledger: TimedLedger, counter: Statements, sink, port) -> Run:
    """What the delivery flow does after rendering: resolve, plan, send; timed and counted."""
    channel = TimedEmailChannel(
        SmtpSettings(host="127.0.0.1", port=port, security="none", username=None)
    )
    received = sink.count
    before = counter.snapshot()
    started, cpu = time.perf_counter(), time.process_time()
    recipients = resolve_recipients(sub, report)
    run_id = uuid.uuid4().hex
    plan = plan_deliveries(sub, report, recipients, {}, store, ledger, run_id=run_id)
    planned = time.perf_counter()
    middle = counter.snapshot()
    ledger.seconds = 0.0
    counts = send_planned(sub, report, plan, channel, store, ledger, run_id=run_id)
    ended, cpu = time.perf_counter(), time.process_time() - cpu
    after = counter.snapshot()
    messages = sink.count - received
    low, high = min(channel.attachments, default=0), max(channel.attachments, default=0)
    return Run(
        messages=messages,
        plan_s=planned - started,
        send_s=ended - planned,
        smtp_s=channel.send_s - channel.build_s,
        build_s=channel.build_s,
        cpu_s=cpu,
        ledger_send_s=ledger.seconds,
        plan_stmts=middle - before,
        send_stmts=after - middle,
        counts=dict(counts.__dict__),
        attachments="" if not high else f"{low}" if low == high else f"{low}–{high}",
    )


def ledger_alone(sub, report, store, ledger: TimedLedger, counter: Statements) -> Run:
    """The ledger's writes around a send (`sending`, then `sent`) for each item, no SMTP."""
    run_id = uuid.uuid4().hex
    started = time.perf_counter()
    plan = plan_deliveries(sub, report, resolve_recipients(sub, report), {}, store, ledger)
    planned, cpu = time.perf_counter(), time.process_time()
    before = counter.snapshot()
    for planned_row in plan:
        ids = [planned_row.row.delivery_id]
        ledger.sending(ids, run_id)
        ledger.sent(ids, f"<{ids[0]}@bench>")
    ended = time.perf_counter()
    return Run(
        messages=len(plan),
        plan_s=planned - started,
        send_s=ended - planned,
        smtp_s=0.0,
        build_s=0.0,
        cpu_s=time.process_time() - cpu,
        ledger_send_s=ended - planned,
        plan_stmts=Counter(),
        send_stmts=counter.snapshot() - before,
    )


def repetition(rep: int, backend, report, store, rows, sink, port, expect) -> dict[str, Run]:
    ledger, counter = backend
    runs = {}
    cold = subscription(f"bench-{rep}", rows)
    runs["cold"] = deliver(cold, report, store, ledger, counter, sink, port)
    runs["re-run"] = deliver(cold, report, store, ledger, counter, sink, port)
    digest = subscription(f"bench-digest-{rep}", rows, digest=True)
    runs["digest"] = deliver(digest, report, store, ledger, counter, sink, port)
    items, recipients = expect
    months = items // recipients
    wanted = {"cold": (items, items, 0), "re-run": (0, 0, items), "digest": (recipients, items, 0)}
    for name, (messages, sent, already) in wanted.items():
        run = runs[name]
        got = (run.messages, run.counts["sent"], run.counts["already"])
        assert got == (messages, sent, already), f"{name}: (messages, sent, already) = {got}"
        assert run.counts["failed"] == run.counts["held"] == run.counts["skipped"] == 0, run.counts
    assert runs["cold"].attachments == "1", runs["cold"].attachments
    assert runs["digest"].attachments == f"{months}", runs["digest"].attachments
    alone = subscription(f"bench-ledger-{rep}", rows)
    runs["ledger alone"] = ledger_alone(alone, report, store, ledger, counter)
    return runs


# ---- report ------------------------------------------------------------------------------


def med(runs: list[Run], value) -> float:
    return statistics.median(value(run) for run in runs)


def table(results: dict[str, dict[str, list[Run]]]) -> list[tuple[str, list[str]]]:
    """Rows of (label, one cell per backend): medians of the repetitions, counts of the last."""
    lines: list[tuple[str, list[str]]] = []
    phase = ""

    def row(label: str, cell) -> None:
        lines.append((label, [cell(runs[phase]) for runs in results.values()]))

    def seconds(value, digits: int = 3):
        def cell(runs: list[Run]) -> str:
            best = min(value(r) for r in runs)
            return f"{med(runs, value):.{digits}f} s (best {best:.{digits}f})"

        return cell

    def per_message_ms(value):
        return lambda runs: f"{med(runs, lambda r: 1000 * value(r) / r.messages):.1f} ms"

    def statements(kind: str, part: str = "stmts"):
        def cell(runs: list[Run]) -> str:
            run = runs[-1]
            counted = getattr(run, part)
            total = sum(v for k, v in counted.items() if k != "commit") if kind == "all" else 0
            total = total or counted[kind]
            return f"{total} = {total / run.messages:.2f}/msg" if run.messages else f"{total}"

        return cell

    titles = {
        "cold": "cold: one message per item",
        "re-run": "unchanged re-run: nothing to send",
        "digest": "digest: one message per recipient",
        "ledger alone": "ledger alone: sending + sent, no SMTP",
    }
    for phase, title in titles.items():
        lines.append((title, []))
        if phase == "ledger alone":
            row("  sending + sent, per message", per_message_ms(lambda r: r.send_s))
            row("  statements (all writes)", statements("all", "send_stmts"))
            row("  transactions (commits)", statements("commit", "send_stmts"))
            continue
        row("  messages (sink received)", lambda runs: f"{runs[-1].messages}")
        row("  attachments per message", lambda runs: runs[-1].attachments or "–")
        row("  wall: resolve + plan + send", seconds(lambda r: r.wall_s, 2))
        row("    resolve + plan", seconds(lambda r: r.plan_s))
        row("    send", seconds(lambda r: r.send_s))
        if phase != "re-run":
            row(
                "  messages/s (wall)",
                lambda runs: (
                    f"{med(runs, lambda r: r.messages / r.wall_s):.1f} "
                    f"(best {max(r.messages / r.wall_s for r in runs):.1f})"
                ),
            )
            row("  CPU per message (this process)", per_message_ms(lambda r: r.cpu_s))
            row("  per message: SMTP", per_message_ms(lambda r: r.smtp_s))
            row("    MIME build (channel.send)", per_message_ms(lambda r: r.build_s))
            row("    ledger (sending + sent)", per_message_ms(lambda r: r.ledger_send_s))
            row("    other (PDF reads, bodies)", per_message_ms(lambda r: r.other_s))
        row("  ledger statements, all", statements("all"))
        row("    writes (INSERT/UPDATE)", statements("write"))
        row("      of them while sending", statements("write", "send_stmts"))
        row("    ledger reads (rr_deliveries)", statements("ledger read"))
        row("    item_history reads (plan)", statements("other read"))
        row("  transactions (commits)", statements("commit"))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--carriers", type=int, default=16, help="carriers = recipients (≤ 16)")
    parser.add_argument("--months", type=int, default=12, help="months of 2013 per carrier")
    parser.add_argument("--repeat", type=int, default=5, help="repetitions (medians)")
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    if not 1 <= args.carriers <= 16 or not 1 <= args.months <= 12:
        parser.error("--carriers 1–16, --months 1–12")

    import sqlalchemy

    from deployments.prefect_server import free_port
    from reports.definitions import default_catalog
    from reports.delivery._smtp_sink import SmtpSink
    from reports.index import ItemIndex
    from reports.store import OutputStore

    speed = core_speed()
    print(
        f"{os.cpu_count()} cores; Python {platform.python_version()}, "
        f"SQLAlchemy {sqlalchemy.__version__}"
    )
    print(f"core speed: a pure-Python loop of 5,000,000 additions took {speed:.3f} s (median of 3)")
    report = default_catalog().get(REPORT)
    work = Path(tempfile.mkdtemp(prefix="reportrunner-bench-delivery-"))
    drops = []
    sink = None
    try:
        store = OutputStore(str(work / "output"))
        items = items_of(report, args.carriers, args.months)
        seeded = seed_store(report, store, work, items)
        print(
            f"items: {len(items)} {REPORT} ({args.carriers} carriers × {args.months} months "
            f"of 2013): one PDF rendered in {seeded['render_s']:.1f} s "
            f"({seeded['pdf_bytes'] / 1024:.0f} KiB, {seeded['pages']} pages), written as "
            f"every item's output in {seeded['write_s']:.1f} s"
        )
        rows = recipient_rows(report, args.carriers, args.months)
        backends: dict[str, tuple[TimedLedger, Statements]] = {}
        for name in args.backends.split(","):
            if name == "sqlite":
                url = f"sqlite:///{work / 'index.sqlite'}"
                label = "SQLite"
            elif name == "postgresql":
                scratch = postgres_scratch()
                if scratch is None:
                    print("PostgreSQL: skipped: unreachable")
                    continue
                url, drop = scratch
                drops.append(drop)
                label = "PostgreSQL"
            else:
                parser.error(f"unknown backend {name!r}")
            index = ItemIndex(url)
            backends[label] = (TimedLedger(index), Statements(index.engine))
        port = free_port()
        sink = SmtpSink(work / "sink", port=port).start()
        print(
            f"recipients: {args.carriers} (one per carrier, {args.months} rows each); "
            f"SMTP: in-process sink on 127.0.0.1, a connection per message; "
            f"{args.repeat} repetitions, backends alternating; medians",
            flush=True,
        )
        results: dict[str, dict[str, list[Run]]] = {b: {} for b in backends}
        expect = (len(items), args.carriers)
        for rep in range(args.repeat):
            for label, backend in backends.items():
                runs = repetition(rep, backend, report, store, rows, sink, port, expect)
                for phase, run in runs.items():
                    results[label].setdefault(phase, []).append(run)
                print(
                    f"  repetition {rep + 1}, {label}: cold {runs['cold'].wall_s:.2f} s, "
                    f"re-run {runs['re-run'].wall_s:.2f} s, digest {runs['digest'].wall_s:.2f} s, "
                    f"ledger alone {runs['ledger alone'].send_s:.2f} s",
                    flush=True,
                )
        total = sink.count
        per_rep = len(items) + args.carriers
        assert total == per_rep * args.repeat * len(backends), f"sink received {total}"
        lines = table(results)
        width = max(len(label) for label, cells in lines if cells) + 2
        print()
        print(f"{'':<{width}}" + "".join(f"{b:>24}" for b in backends))
        for label, cells in lines:
            print((f"{label:<{width}}" + "".join(f"{c:>24}" for c in cells)).rstrip())
        print(
            f"\nsink received {total} messages = ({len(items)} + 0 + {args.carriers}) × "
            f"{args.repeat} repetitions × {len(backends)} backends: every message arrived"
        )
        for ledger, _ in backends.values():
            ledger.index.engine.dispose()
    finally:
        if sink is not None:
            sink.stop()
        for drop in drops:
            drop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
