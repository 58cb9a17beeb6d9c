"""Item index at 5,000 and 100,000 items: search, the batch page's data, and the writes.

Seeds, for each backend (SQLite in a temporary folder; PostgreSQL in a scratch
database when it answers), an index of one synthetic report through the real write
API, the way the flows write it: `start_batch` per batch, `mark` as items start,
`record` as they finish (one item per call, as a render task does, and in chunks of
500, as a batch settling its current items does). Each batch is one month of
carrier × origin (25 × 200 = 5,000 items); ~3 % of items fail, ~4 % are flagged,
~3 % are unchanged, ~10 % have a second render and ~3 % a third, with KPIs.

Then, warm, median and p90 of several repetitions, at 5,000 indexed items (one batch)
and again at 100,000 (twenty batches), side by side:

- `search_items` as the Items page asks it (first page of 50 plus the total);
- the batch page's data for one 5,000-item batch: `get_batch` (with the dimensions
  that vary), `status_matrix` and `matrix_html` for the first 40 rows, each and in all;
- `item_history` of one item, `recent_batches(limit=10)`, `report_activity` over 24 h.

"store calls" are the SQL statements the operation sends (SQLAlchemy's
`before_cursor_execute` on the index's engine; an executemany counts once). The batch
page also makes 2 Prefect API calls whatever the batch's size, its run and its
progress artifact (`dashboard/api/_items.py: batch_view`); they are not run here.

Target: every operation ≤ 1 s (judged on the p90) at 5,000 and at 100,000 items.
Usage: .venv/bin/python bench/item_index.py [--items 100000] [--batch 5000] [--repeat 11]
           [--backends sqlite,postgresql] [--single 500]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import math
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from _machine import core_speed  # bench/_machine.py, beside this script

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

REPORT = "bench-carrier-origin"
TARGET_S = 1.0
CHUNK = 500  # outcomes per `record` call when seeding
MARK_GROUP = 24  # items a render task marks "running" at once (items_per_task)
_MAJORS = ("AA", "DL", "UA", "WN", "B6", "AS", "NK", "F9", "HA", "G4", "SY", "MQ", "OO")
CARRIERS = (*_MAJORS, "YX", "9E", "OH", "YV", "EV", "VX", "US", "FL", "CO", "NW", "XE", "QX")
POSTGRES_ADMIN_URL = os.environ.get(
    "REPORTRUNNER_BENCH_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)


def origins(count: int) -> list[str]:
    """Three-letter airport-like codes, JFK among them."""
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    codes = ["JFK", "LGA", "EWR"]
    step = 0
    while len(codes) < count:
        spread = step * 4099 % 26**3  # 4099 is prime to 26: every code once per cycle
        code = letters[spread // 676] + letters[spread // 26 % 26] + letters[spread % 26]
        step += 1
        if code not in codes:
            codes.append(code)
    return codes


def month_of(batch: int) -> str:
    """Batch 0 is 2013-07, then one month back per batch."""
    index = 2013 * 12 + 6 - batch
    return f"{index // 12}-{index % 12 + 1:02d}"


def machine_speed() -> str:
    """The core-speed reference and the load average, as one line's end."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{core_speed():.3f} s (load average {load:.1f})"


class Statements:
    """SQL statements sent on an engine (an executemany counts once; its rows are counted)."""

    def __init__(self, engine) -> None:
        from sqlalchemy import event

        self.count = 0
        self.rows = 0
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn, _cursor, _statement, parameters, _context, executemany) -> None:
        self.count += 1
        self.rows += len(parameters) if executemany else 1


# ---- seeding -----------------------------------------------------------------------------


@dataclass
class Writes:
    """What the writes cost, by kind: calls, items, seconds, statements, parameter rows."""

    kinds: dict[str, list[float]] = field(default_factory=dict)

    def add(self, kind: str, items: int, seconds: float, statements: int, rows: int) -> None:
        totals = self.kinds.setdefault(kind, [0, 0, 0.0, 0, 0])
        for i, value in enumerate((1, items, seconds, statements, rows)):
            totals[i] += value


@dataclass
class Seeder:
    index: object
    counter: Statements
    rng: random.Random
    batches: int
    per_batch: int
    single: int
    writes: Writes = field(default_factory=Writes)
    batch_ids: list[str] = field(default_factory=list)
    seeded_items: int = 0
    probe_item: str | None = None  # the key of an item with three renders
    started: float = field(default_factory=time.time)

    def _timed(self, kind: str, items: int, write: Callable[[], None]) -> None:
        before_n, before_rows = self.counter.count, self.counter.rows
        started = time.perf_counter()
        write()
        self.writes.add(
            kind,
            items,
            time.perf_counter() - started,
            self.counter.count - before_n,
            self.counter.rows - before_rows,
        )

    def _items(self, batch: int) -> list[dict[str, str]]:
        month = month_of(batch)
        airports = origins(math.ceil(self.per_batch / len(CARRIERS)))
        listed = [{"carrier": c, "month": month, "origin": o} for c in CARRIERS for o in airports]
        return listed[: self.per_batch]

    def _at(self, batch: int, position: int, render: int = 0) -> str:
        """Renders spread back in time: the newest batch within the last 24 h."""
        age_days = (self.batches - 1 - batch) * 1.5 + 0.5 - render * 0.2
        moment = self.started - age_days * 86400 + position * 0.01
        return dt.datetime.fromtimestamp(moment, dt.UTC).isoformat()

    def _outcome(self, params: dict, batch: int, position: int, render: int = 0):
        from reports.contracts import Outcome, item_key

        key = item_key(params)
        roll = self.rng.random()
        duration = round(self.rng.uniform(0.4, 1.6), 3)
        if render == 0 and roll < 0.03:
            failed = Outcome.failed(params, "SourceError: flights table locked", attempts=3)
            failed.duration_s = duration
            return failed
        fingerprint = hashlib.sha256(f"{key}/{render}".encode()).hexdigest()[:32]
        flights = 200 + (position * 37 + render * 11) % 900
        return Outcome(
            key=key,
            params=params,
            status="skipped" if render == 0 and roll < 0.06 else "rendered",
            duration_s=duration,
            pages=3,
            quality="warning" if 0.06 <= roll < 0.10 else "ok",
            item_dir=f"{REPORT}/{key}",
            files=[f"{REPORT}/{key}/report.pdf", f"{REPORT}/{key}/daily.csv"],
            fingerprint=fingerprint,
            data_hash="d" + fingerprint[:31],
            rendered_at=self._at(batch, position, render),
            rows={"flights": flights, "daily": 31},
            kpis={
                "flights": f"{flights:,}",
                "on-time": f"{70 + (position + render * 3) % 25:.1f} %",
                "avg delay": f"{5 + (position * 3 + render) % 20} min",
            },
        )

    def seed_batch(self) -> None:
        """One more batch: registered, its items recorded, some of them rendered again."""
        batch = len(self.batch_ids)
        batch_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        self.batch_ids.append(batch_id)
        listed = self._items(batch)
        name = f"{REPORT} {month_of(batch)}"
        self._timed(
            "start_batch",
            len(listed),
            lambda: self.index.start_batch(batch_id, REPORT, name, ["carrier", "origin"], listed),
        )
        outcomes = [self._outcome(p, batch, i) for i, p in enumerate(listed)]
        # The last batch's first items as a render task records them: marked running in
        # groups, then one `record` call (one transaction) per finished item.
        single = self.single if batch == self.batches - 1 else 0
        for start in range(0, single, MARK_GROUP):
            group = listed[start : min(start + MARK_GROUP, single)]
            self._timed(
                "mark running, per group",
                len(group),
                lambda g=group: self.index.mark(
                    REPORT, g, "running", run_id=batch_id, batch_id=batch_id
                ),
            )
            for outcome in outcomes[start : start + len(group)]:
                self._timed(
                    "record, 1 item per call",
                    1,
                    lambda o=outcome: self.index.record(
                        REPORT, [o], run_id=batch_id, batch_id=batch_id
                    ),
                )
        for start in range(single, len(outcomes), CHUNK):
            chunk = outcomes[start : start + CHUNK]
            self._timed(
                f"record, {CHUNK} items per call",
                len(chunk),
                lambda c=chunk: self.index.record(REPORT, c, run_id=batch_id, batch_id=batch_id),
            )
        self._timed(
            "finish_batch",
            0,
            lambda: self.index.finish_batch(batch_id, "completed", f"{len(listed)} items"),
        )
        # Later single-report runs: ~10 % of the items again, ~3 % a third time.
        again, thirds = [], []
        for render, share in ((1, 100), (2, 30)):
            for position, params in enumerate(listed):
                if (position * 7919 + batch) % 1000 < share:
                    again.append(self._outcome(params, batch, position, render))
                    if render == 2:
                        thirds.append(again[-1].key)
        for start in range(0, len(again), CHUNK):
            chunk = again[start : start + CHUNK]
            run_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
            self._timed(
                f"record, {CHUNK} items per call",
                len(chunk),
                lambda c=chunk, r=run_id: self.index.record(REPORT, c, run_id=r),
            )
        if self.probe_item is None and thirds:
            self.probe_item = thirds[0]
        self.seeded_items += len(listed)


# ---- measuring ---------------------------------------------------------------------------


@dataclass
class Result:
    seconds: list[float]
    calls: int
    found: str = ""
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def p90(self) -> float:
        ordered = sorted(self.seconds)
        return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def measure(repeat: int, counter: Statements, operation: Callable[[], str]) -> Result:
    """Warm once, then `repeat` timed calls; the store calls of one call."""
    found = operation()
    seconds, calls = [], 0
    for _ in range(repeat):
        before = counter.count
        started = time.perf_counter()
        found = operation()
        seconds.append(time.perf_counter() - started)
        calls = counter.count - before
    return Result(seconds, calls, found)


def batch_page(repeat: int, index, counter: Statements, batch_id: str) -> dict[str, Result]:
    """The batch page's data as `batch_view` and the page build it, each part timed."""
    from dashboard.api._items import varying_dimensions
    from dashboard.api._matrix import status_matrix
    from dashboard.components.matrix import matrix_html
    from reports.index import get_batch

    rows_per_page = 40  # dashboard/views/batch.py: MATRIX_ROWS_PER_PAGE
    parts: dict[str, list[float]] = {"read": [], "matrix": [], "html": [], "total": []}
    calls = 0
    for attempt in range(repeat + 1):  # the first one warms
        before = counter.count
        t0 = time.perf_counter()
        batch, members = get_batch(index, batch_id)
        dims = varying_dimensions(batch, members)
        t1 = time.perf_counter()
        rows_dim, cols_dim = dims[0], dims[1]  # the page's default: first two dimensions
        grid = status_matrix(members, rows_dim, cols_dim, {})
        t2 = time.perf_counter()
        page = grid.row_values[:rows_per_page]
        html = matrix_html(grid, batch.report, page)
        t3 = time.perf_counter()
        if attempt:
            for name, seconds in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t3 - t0), strict=True):
                parts[name].append(seconds)
            calls = counter.count - before
        cells = len(page) * len(grid.col_values)
        note = (
            f"rows {rows_dim} × columns {cols_dim}: first page {len(page)} rows × "
            f"{len(grid.col_values)} columns = {cells:,} cells, {len(html) // 1024:,} KiB of HTML"
        )
    return {
        "batch page: get_batch + dimensions": Result(parts["read"], calls, f"{len(members):,}"),
        "batch page: status_matrix": Result(parts["matrix"], 0),
        "batch page: matrix_html, 40 rows": Result(parts["html"], 0),
        "batch page: total (+ 2 API calls)": Result(
            parts["total"], calls, f"{cells:,} cells", note
        ),
    }


def measure_all(repeat: int, seeder: Seeder) -> dict[str, Result]:
    from reports.index import ItemQuery, item_history, recent_batches, report_activity, search_items

    index, counter = seeder.index, seeder.counter
    first_month = month_of(0)

    def search(text: str = "", statuses: tuple[str, ...] = ()) -> Callable[[], str]:
        def run() -> str:
            page = search_items(index, ItemQuery(text, statuses=statuses, limit=50))
            return f"{len(page.rows)} of {page.total:,}"

        return run

    def history() -> str:
        found = item_history(index, REPORT, seeder.probe_item)
        return f"{len(found.renders)} renders"

    def batches() -> str:
        return f"{len(recent_batches(index, limit=10))} listed"

    def activity() -> str:
        now = time.time()
        figures = report_activity(index, now - 86400, now + 1)
        return f"{sum(f.rendered + f.flagged + f.failed for f in figures):,} renders"

    cases: list[tuple[str, Callable[[], str]]] = [
        ("search (no text): newest 50 + total", search()),
        ("search carrier=AA", search("carrier=AA")),
        (f"search carrier=AA month={first_month}", search(f"carrier=AA month={first_month}")),
        ("search … origin=JFK (one item)", search(f"carrier=AA month={first_month} origin=JFK")),
        ("search loose word JFK", search("JFK")),
        ("search status failed", search("", ("failed",))),
        ("search carrier=AA + status failed", search("carrier=AA", ("failed",))),
    ]
    results = {label: measure(repeat, counter, run) for label, run in cases}
    results.update(batch_page(repeat, index, counter, seeder.batch_ids[0]))
    results["item_history (one item)"] = measure(repeat, counter, history)
    results["recent_batches(limit=10)"] = measure(repeat, counter, batches)
    results["report_activity, last 24 h"] = measure(repeat, counter, activity)
    return results


# ---- backends ----------------------------------------------------------------------------


def run_backend(name: str, url: str, args) -> tuple[dict[int, dict[str, Result]], Seeder]:
    from reports.index import ItemIndex

    index = ItemIndex(url)
    counter = Statements(index.engine)
    batches = max(1, args.items // args.batch)
    seeder = Seeder(index, counter, random.Random(20261201), batches, args.batch, args.single)
    measured: dict[int, dict[str, Result]] = {}
    checkpoints = sorted({1, batches})
    started = time.perf_counter()
    for done in range(1, batches + 1):
        seeder.seed_batch()
        if done in checkpoints:
            seeded = time.perf_counter() - started
            speed = machine_speed()
            print(
                f"  {name}: {seeder.seeded_items:,} items seeded ({seeded:.0f} s so far); "
                f"core loop {speed}; measuring…",
                flush=True,
            )
            measured[seeder.seeded_items] = measure_all(args.repeat, seeder)
    index.engine.dispose()
    return measured, seeder


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


# ---- report ------------------------------------------------------------------------------


def print_backend(title: str, measured: dict[int, dict[str, Result]], seeder: Seeder) -> bool:
    sizes = sorted(measured)
    print(f"\n{title}")
    head = f"{'operation':<38}"
    sub = f"{'':<38}"
    for size in sizes:
        head += f" | {f'{size:,} items indexed':<37}"
        sub += f" | {'median s':>8} {'p90 s':>7} {'calls':>5} {'found':<14}"
    print(head + " | ≤ 1 s")
    print(sub + " |")
    passed = True
    for label in measured[sizes[0]]:
        line = f"{label:<38}"
        ok = True
        for size in sizes:
            result = measured[size][label]
            calls = f"{result.calls}" if "batch page" not in label or result.calls else "–"
            line += (
                f" | {result.median:>8.3f} {result.p90:>7.3f} {calls:>5} {result.found[:14]:<14}"
            )
            ok = ok and result.p90 <= TARGET_S
        passed = passed and ok
        print(f"{line} | {'PASS' if ok else 'FAIL'}")
    last = measured[sizes[-1]]
    total = last["batch page: total (+ 2 API calls)"]
    print(f"  batch page grid, {total.found.split()[0]} cells: {total.note}")
    print(
        f"  {'writes':<25} {'calls':>6} {'items':>8} {'seconds':>8} | {'ms/call':>8} "
        f"{'stmts/call':>10} {'SQL rows/call':>13} | {'ms/item':>7}"
    )
    for kind, (calls, items, seconds, statements, rows) in seeder.writes.kinds.items():
        per_item = f"{1000 * seconds / items:7.2f}" if items else f"{'–':>7}"
        print(
            f"  {kind:<25} {int(calls):>6,} {int(items):>8,} {seconds:>8.1f} | "
            f"{1000 * seconds / calls:>8.1f} {statements / calls:>10.1f} {rows / calls:>13,.0f} | "
            f"{per_item}"
        )
    return passed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000, help="items in the full index")
    parser.add_argument("--batch", type=int, default=5_000, help="items per batch")
    parser.add_argument("--repeat", type=int, default=11, help="timed runs of each operation")
    parser.add_argument(
        "--single", type=int, default=500, help="items of the last batch recorded one per call"
    )
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    if args.batch > len(CARRIERS) * 676:
        parser.error(f"--batch at most {len(CARRIERS) * 676}")

    import platform

    import sqlalchemy

    print(
        f"{os.cpu_count()} cores; Python {platform.python_version()}, "
        f"SQLAlchemy {sqlalchemy.__version__}"
    )
    print(
        "core speed: a pure-Python loop of 5,000,000 additions, median of 3: "
        f"{machine_speed()} (again before each measurement below)"
    )
    batches = max(1, args.items // args.batch)
    print(
        f"index: {args.items:,} items of one report in {batches} batch(es) "
        f"of {args.batch:,} (carrier × origin, one month each); {args.repeat} timed runs each, "
        "warm; PASS = p90 ≤ 1 s",
        flush=True,
    )
    passed = True
    for backend in args.backends.split(","):
        if backend == "sqlite":
            work = Path(tempfile.mkdtemp(prefix="reportrunner-bench-index-"))
            try:
                measured, seeder = run_backend("SQLite", f"sqlite:///{work / 'index.sqlite'}", args)
                size = (work / "index.sqlite").stat().st_size
                passed &= print_backend(
                    f"SQLite (file in a temporary folder, {size / 2**20:.0f} MiB)",
                    measured,
                    seeder,
                )
            finally:
                shutil.rmtree(work, ignore_errors=True)
        elif backend == "postgresql":
            scratch = postgres_scratch()
            if scratch is None:
                print("\nPostgreSQL: skipped: unreachable")
                continue
            url, drop = scratch
            try:
                measured, seeder = run_backend("PostgreSQL", url, args)
                passed &= print_backend("PostgreSQL (local server)", measured, seeder)
            finally:
                drop()
        else:
            parser.error(f"unknown backend {backend!r}")
    print(f"\nevery operation ≤ 1 s: {'PASS' if passed else 'FAIL'}")


if __name__ == "__main__":
    main()
