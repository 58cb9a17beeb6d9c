"""Capacity model: what one report item costs a Prefect server, its database and a worker.

For sizing before adding hosts. The same batch of carrier-monthly items runs through
the `batch/carrier-monthly` deployment twice, each time on a Prefect server of its own
with one `reportrunner worker`: once on SQLite (the one-machine stack) and once on
PostgreSQL (the scale-out profile; a scratch database created and dropped here, a
second one for the item index). Chunks run as flow runs of the `render-chunk`
deployment (`chunk_runs="deployment"`), as they do whenever two or more workers are
online, so the cost measured with one worker is the one that scales out.

Measured per item, over the batch's span (its creation to the end of the run):
  API requests     from the server's access log, by route (this script's own polling
                   of the batch's state left out)
  rows written     SQLite: rows per table counted before and after (net rows: updates
                   do not show); PostgreSQL: pg_stat_user_tables n_tup_ins, n_tup_upd,
                   n_tup_del deltas of the server's database (and of the item index's),
                   read after the backends' statistics flush (up to 10 s)
  CPU ms           from /proc every 0.25 s (utime + stime): the server process and its
                   children; PostgreSQL backends serving each scratch database (their
                   process title names it); the worker and everything it starts
                   (flow-run processes, the warm process, render processes)
Each figure is also given net of the idle rate measured just before (the same server
with the worker started and polling, no runs): the rest is what items cost. The idle
rates, without a worker and with one, give the fixed cost of the server and of each
extra worker. On PostgreSQL a second, small batch (as many chunks, one item each) splits
the cost into per chunk (a flow-run start, its render processes' start, a share of the
batch's own work) and per item, so the projection can assume the product's chunk
size (REPORTRUNNER_CHUNK_SIZE) instead of the bench's small chunks. From these the
script projects, for one Prefect server on PostgreSQL,
the items per hour it can feed, the worker hosts that takes and which resource fills
first, and then checks the projection once: two workers on PostgreSQL on this machine
share a batch, and the measured items per hour and server CPU share are set against
what the per-item figures predict for this machine.

Last, `bench/storage_cost.py` runs as it is (S3 on moto vs a local folder) and its
per-item requests and seconds are shown next to the model.

Seconds on a shared machine are noisy; the model rests on CPU-ms and counts. The
plain-loop reference (5,000,000 additions) and the load average are printed at the
start and at the end.

Usage: .venv/bin/python bench/capacity.py [--carriers 4] [--months 12] [--chunk-size 12]
           [--max-parallel N] [--idle-s 15] [--s3-items 8] [--project-chunk-size N]
           [--worker-cores N] [--db-cores N] [--headroom 0.7]
           [--skip-sqlite] [--skip-decomposition] [--skip-check]
PostgreSQL: REPORTRUNNER_BENCH_POSTGRES_URL (default: postgres@127.0.0.1:5432, trust auth).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(PROJECT))

from _machine import core_speed  # noqa: E402
from batch_throughput import CpuSampler, api_requests, wait_until_ready  # noqa: E402

POSTGRES_ADMIN_URL = os.environ.get(
    "REPORTRUNNER_BENCH_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)
DEPLOYMENT = "batch/carrier-monthly"
HOUR_MS = 3_600_000
STATS_FLUSH_S = 11  # PostgreSQL backends flush table statistics within 10 s of going idle
WORKER_KINDS = ("worker", "warm process", "flow-run processes", "flow-run clients")
RENDER = "render processes"
SERVER = "server"
PG_PREFECT = "postgres: server's db"
PG_INDEX = "postgres: item index db"


# ---- the machine ------------------------------------------------------------------------


def machine_busy_s() -> float:
    """CPU seconds all cores spent busy since boot (everything: ours and others')."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def machine_line() -> str:
    return f"plain loop (5,000,000 additions, median of 3) {core_speed():.3f} s; load " + (
        "/".join(f"{x:.1f}" for x in os.getloadavg())
    )


# ---- CPU per kind of process, workers and PostgreSQL backends included ------------------


class Sampler(CpuSampler):
    """CpuSampler for several workers, plus the PostgreSQL backends of named databases.

    A backend's process title is "postgres: <cluster>: <user> <database> <client> <state>";
    backends of other databases (another session's tests) and `exclude` (this script's
    own statistics connections) are left out.
    """

    def __init__(
        self,
        server_pid: int,
        workers: dict[str, int],
        databases: dict[str, str] | None = None,
        postmaster: int | None = None,
        exclude: set[int] | None = None,
    ) -> None:
        super().__init__(server_pid, -1)
        self.workers = workers
        self.databases = databases or {}
        self.postmaster = postmaster
        self.exclude = exclude or set()
        self.owner: dict[tuple[int, int], str] = {}
        self.machine = 0.0
        self.wall = 0.0

    def __enter__(self) -> Sampler:
        self._machine0, self._wall0 = machine_busy_s(), time.monotonic()
        super().__enter__()
        return self

    def __exit__(self, *exc) -> None:
        super().__exit__(*exc)
        self.machine = machine_busy_s() - self._machine0
        self.wall = time.monotonic() - self._wall0

    def _run(self) -> None:
        while not self.stop_event.wait(0.25):
            self.seen.update(self._sample())

    def _sample(self) -> dict[tuple[int, int], tuple[str, float]]:
        from deployments.processes import descendants, process_table

        table = process_table()
        server = {self.server_pid, *descendants(self.server_pid, table)}
        owners = {}
        for name, root in self.workers.items():
            for pid in (root, *descendants(root, table)):
                owners[pid] = name
        backends = {}
        if self.postmaster and self.databases:
            for stat in table.values():
                if stat.ppid != self.postmaster or stat.pid in self.exclude:
                    continue
                words = _cmdline(stat.pid).split()
                if len(words) > 3 and words[3] in self.databases:
                    backends[stat.pid] = self.databases[words[3]]
        ticks = os.sysconf("SC_CLK_TCK")
        found = {}
        for pid in server | set(owners) | set(backends):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            key = (pid, int(fields[19]))
            cpu = (int(fields[11]) + int(fields[12])) / ticks
            if key in self.seen:  # as first seen: an exiting process has no command line left
                kind = self.seen[key][0]
            elif pid in backends:
                kind = backends[pid]
            else:
                kind = self._kind(pid, table.get(pid), _cmdline(pid).encode(), table, server)
            found[key] = (kind, cpu)
            self.owner[key] = owners.get(pid, "")
        return found

    def by_worker(self) -> dict[str, float]:
        totals: Counter = Counter()
        for key, (_, cpu) in self.seen.items():
            if self.owner.get(key):
                totals[self.owner[key]] += cpu - self.base.get(key, 0.0)
        return dict(totals)


def _cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


# ---- rows written ----------------------------------------------------------------------


class SqliteRows:
    """Rows per table of a SQLite file (net: inserts minus deletes; updates do not show)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def snapshot(self) -> dict[str, tuple[int, int, int]]:
        if not self.path.exists():
            return {}
        with contextlib.closing(sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)) as db:
            tables = [
                name
                for (name,) in db.execute(
                    "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
                )
            ]
            return {
                t: (db.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0], 0, 0) for t in tables
            }

    def close(self) -> None:
        pass


class PostgresRows:
    """pg_stat_user_tables (inserts, updates, deletes) of one database, on one connection."""

    def __init__(self, url: str) -> None:
        import sqlalchemy as sa

        self.engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", pool_size=1)
        self.conn = self.engine.connect()
        self.pid = self.conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()

    def snapshot(self) -> dict[str, tuple[int, int, int]]:
        import sqlalchemy as sa

        rows = self.conn.execute(
            sa.text("SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables")
        )
        found = {name: (ins, upd, dele) for name, ins, upd, dele in rows}
        db = self.conn.execute(
            sa.text(
                "SELECT xact_commit, active_time FROM pg_stat_database "
                "WHERE datname = current_database()"
            )
        ).one()
        found["(transactions committed)"] = (db[0], 0, 0)
        found["(active time, ms)"] = (int(db[1] or 0), 0, 0)
        return found

    def close(self) -> None:
        self.conn.close()
        self.engine.dispose()


def row_delta(before: dict, after: dict) -> dict[str, tuple[int, int, int]]:
    delta = {}
    for table in set(before) | set(after):
        b, a = before.get(table, (0, 0, 0)), after.get(table, (0, 0, 0))
        d = tuple(x - y for x, y in zip(a, b, strict=True))
        if any(d):
            delta[table] = d
    return delta


def written(delta: dict) -> tuple[int, int, int]:
    """Inserts, updates, deletes over user tables (the bracketed extras left out)."""
    rows = [v for k, v in delta.items() if not k.startswith("(")]
    return tuple(sum(v[i] for v in rows) for i in range(3))


# ---- one measured window ---------------------------------------------------------------


@dataclass
class Window:
    label: str
    seconds: float = 0.0
    items: int = 0
    chunks: int = 0
    requests: Counter = field(default_factory=Counter)
    cpu: dict[str, float] = field(default_factory=dict)
    by_worker: dict[str, float] = field(default_factory=dict)
    machine_cpu: float = 0.0
    rows: dict[str, dict] = field(default_factory=dict)  # database → table → (ins, upd, del)
    note: str = ""
    run: object = None  # the batch's flow run

    def cpu_of(self, *kinds: str) -> float:
        return sum(self.cpu.get(k, 0.0) for k in kinds)

    @property
    def ours(self) -> float:
        return sum(self.cpu.values())

    def rate(self, value: float) -> float:
        return value / self.seconds if self.seconds else 0.0


class Stack:
    """A Prefect server with the deployments, its workers, and what measures them."""

    def __init__(self, label: str, home: Path, postgres: dict | None, args) -> None:
        from deployments.prefect_server import PrefectServer

        self.label, self.home, self.pg, self.args = label, home, postgres, args
        home.mkdir(parents=True)
        self.server = PrefectServer(
            home=home / "prefect",
            database_url=postgres["prefect_async"] if postgres else None,
            log_path=home / "server.log",
            extra_env={"PREFECT_SERVER_LOGGING_LEVEL": "INFO"},  # an access-log line per request
        )
        self.index_url = postgres["index"] if postgres else f"sqlite:///{home / 'index.sqlite'}"
        self.workers: dict[str, subprocess.Popen] = {}
        self.counters: dict[str, SqliteRows | PostgresRows] = {}

    def start(self) -> None:
        started = time.monotonic()
        self.server.start(timeout=300)
        print(f"[{self.label}] server up in {time.monotonic() - started:.1f} s", flush=True)
        if self.pg:
            self.counters = {
                "server": PostgresRows(self.pg["prefect"]),
                "index": PostgresRows(self.pg["index"]),
            }
        else:
            self.counters = {
                "server": SqliteRows(self.home / "prefect" / "prefect.db"),
                "index": SqliteRows(self.home / "index.sqlite"),
            }

    def env(self, output: str) -> dict[str, str]:
        return {
            **os.environ,
            "PREFECT_API_URL": self.server.api_url,
            "REPORTRUNNER_HOME": str(self.home),
            "REPORTRUNNER_OUTPUT_URL": str(self.home / output),
            "REPORTRUNNER_INDEX_URL": self.index_url,
        }

    def start_worker(self, name: str, output: str) -> subprocess.Popen:
        from deployments.prefect_server import free_port
        from deployments.processes import service_preexec

        env = {**self.env(output), "PREFECT_HOME": str(self.home / f"{name}-home")}
        command = [sys.executable, "-m", "deployments.cli", "worker", "--name", name]
        command += ["--limit", str(self.args.worker_limit)]
        command += ["--healthcheck-port", str(free_port())]
        self.workers[name] = subprocess.Popen(
            command,
            env=env,
            cwd=PROJECT,
            stdout=(self.home / f"{name}.log").open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=service_preexec(),
        )
        return self.workers[name]

    def wait_for_workers(self, timeout: float = 300) -> None:
        from prefect import get_client
        from prefect.client.schemas.objects import WorkerStatus

        for name, process in self.workers.items():
            wait_until_ready(self.home / f"{name}.log", process, timeout=timeout)
        deadline = time.monotonic() + 60
        with get_client(sync_client=True) as client:
            while time.monotonic() < deadline:
                online = {
                    w.name
                    for w in client.read_workers_for_work_pool("reports")
                    if w.status == WorkerStatus.ONLINE
                }
                if set(self.workers) <= online:
                    return
                time.sleep(1)
        raise RuntimeError(f"[{self.label}] workers not all online: {sorted(self.workers)}")

    def stop_workers(self) -> None:
        from deployments.processes import stop_process_group

        for name, process in list(self.workers.items()):
            stop_process_group(process, grace_s=20)
            del self.workers[name]

    def stop(self) -> None:
        self.stop_workers()
        for counter in self.counters.values():
            counter.close()
        self.server.stop()

    def sampler(self) -> Sampler:
        databases, postmaster, exclude = {}, None, set()
        if self.pg:
            from deployments.processes import proc_stat

            databases = {self.pg["prefect_db"]: PG_PREFECT, self.pg["index_db"]: PG_INDEX}
            exclude = {c.pid for c in self.counters.values()}
            stat = proc_stat(next(iter(exclude)))
            postmaster = stat.ppid if stat else None
        return Sampler(
            self.server.process.pid,
            {n: p.pid for n, p in self.workers.items()},
            databases,
            postmaster,
            exclude,
        )

    def rows(self) -> dict[str, dict]:
        return {name: counter.snapshot() for name, counter in self.counters.items()}

    def log_mark(self) -> int:
        return len(api_requests(self.server.log_path))

    def requests_since(self, mark: int) -> Counter:
        return Counter(api_requests(self.server.log_path)[mark:])

    def idle(self, label: str, seconds: float) -> Window:
        """`seconds` with nothing to run: the server's (and polling workers') own cost."""
        rows0, mark = self.rows(), self.log_mark()
        with self.sampler() as sampler:
            time.sleep(seconds)
        window = Window(label, seconds=sampler.wall)
        window.requests = self.requests_since(mark)
        window.cpu, window.by_worker = sampler.by_kind(), sampler.by_worker()
        window.machine_cpu = sampler.machine
        rows1 = self.rows()
        window.rows = {db: row_delta(rows0[db], rows1[db]) for db in rows0}
        return window

    def batch(
        self, label: str, carriers: list[str], months: list[str], chunk_size: int, output: str
    ) -> Window:
        """One cold batch, chunks as flow runs of render-chunk, into an emptied `output`."""
        from prefect.deployments import run_deployment

        shutil.rmtree(self.home / output, ignore_errors=True)  # every item renders
        rows0, mark = self.rows(), self.log_mark()
        parameters = {
            "report": "carrier-monthly",
            "over": {"carrier": carriers, "month": months},
            "chunk_size": chunk_size,
            "chunk_runs": "deployment",
        }
        if self.args.max_parallel:
            parameters["max_parallel"] = self.args.max_parallel
        with self.sampler() as sampler:
            run = run_deployment(DEPLOYMENT, parameters=parameters, timeout=3600, poll_interval=2)
        if not run.state.is_completed():
            raise RuntimeError(f"[{self.label}] {label}: {run.state.name}: {run.state.message}")
        items = len(carriers) * len(months)
        window = Window(label, items=items, chunks=-(-items // chunk_size))
        window.seconds = (run.end_time - run.created).total_seconds()  # the server's clock
        window.requests = self._requests_without_polls(mark, run.id)
        window.cpu, window.by_worker = sampler.by_kind(), sampler.by_worker()
        window.machine_cpu = sampler.machine
        # CPU is scaled to the run's own span: the sampler also saw this script's last poll.
        scale = window.seconds / sampler.wall if sampler.wall else 1.0
        window.note = f"sampled {sampler.wall:.1f} s for a run of {window.seconds:.1f} s"
        window.machine_cpu *= min(1.0, scale)
        if self.pg:
            time.sleep(STATS_FLUSH_S)
        rows1 = self.rows()
        window.rows = {db: row_delta(rows0[db], rows1[db]) for db in rows0}
        window.run = run
        return window

    def _requests_without_polls(self, mark: int, run_id) -> Counter:
        own = f"GET /api/flow_runs/{run_id}"
        found = api_requests(self.server.log_path, keep_ids=True)[mark:]
        return Counter(re.sub(r"[0-9a-f-]{36}", "{id}", r) for r in found if r != own)

    def chunk_workers(self, run_id) -> dict[str, int]:
        """Which worker ran how many of the batch's chunk flow runs (from the workers' logs)."""
        from prefect import get_client
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

        with get_client(sync_client=True) as client:
            chunks = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[run_id])
                )
            )
        logs = {n: (self.home / f"{n}.log").read_text(errors="replace") for n in self.workers}
        return {n: sum(str(c.id) in text for c in chunks) for n, text in logs.items()}


# ---- PostgreSQL scratch databases --------------------------------------------------------


@contextlib.contextmanager
def scratch_databases():
    import sqlalchemy as sa

    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"reportrunner_capacity_{uuid.uuid4().hex[:10]}"
    names = [name, f"{name}_index"]
    with admin.connect() as conn:
        for db in names:
            conn.execute(sa.text(f'CREATE DATABASE "{db}"'))
    try:
        url = admin.url
        yield {
            "prefect_db": names[0],
            "index_db": names[1],
            "prefect": url.set(database=names[0]).render_as_string(hide_password=False),
            "prefect_async": url.set(
                drivername="postgresql+asyncpg", database=names[0]
            ).render_as_string(hide_password=False),
            "index": url.set(database=names[1]).render_as_string(hide_password=False),
        }
    finally:
        with contextlib.suppress(Exception):
            from reports.sources import dispose_engines

            dispose_engines()
        with admin.connect() as conn:
            for db in names:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        admin.dispose()
        print(f"dropped scratch databases {', '.join(names)}")


# ---- per-item figures ------------------------------------------------------------------


@dataclass
class PerItem:
    """One backend's per-item figures: gross (everything in the batch's span) and net."""

    label: str
    items: int
    seconds: float
    requests: float
    requests_net: float
    routes: dict[str, float]
    server_ms: float
    server_net_ms: float
    db_ms: float  # PostgreSQL backends of the server's database (0: SQLite, in-process)
    db_net_ms: float
    index_db_ms: float
    worker_ms: float  # worker, warm process, flow-run processes (not the renders)
    render_ms: float
    worker_net_ms: float  # worker-side total, net of the idle worker
    ins: float
    upd: float
    dele: float
    index_rows: float
    xacts: float
    active_ms: float
    idle_server_ms_s: float  # server CPU per second with no worker
    idle_worker_server_ms_s: float  # extra server CPU per second per idle worker
    idle_worker_requests_s: float  # requests per second per idle worker
    idle_worker_ms_s: float  # the idle worker's own CPU per second
    idle_db_ms_s: float

    @property
    def worker_side_ms(self) -> float:
        return self.worker_ms + self.render_ms


def per_item(label: str, idle0: Window, idle1: Window, batch: Window) -> PerItem:
    n, t = batch.items, batch.seconds
    server_rate0 = idle0.rate(idle0.cpu_of(SERVER))
    server_rate1 = idle1.rate(idle1.cpu_of(SERVER))
    requests_rate1 = idle1.rate(sum(idle1.requests.values()))
    worker_rate1 = idle1.rate(idle1.cpu_of(*WORKER_KINDS, RENDER))
    db_rate1 = idle1.rate(idle1.cpu_of(PG_PREFECT))
    server_rows = batch.rows.get("server", {})
    ins, upd, dele = written(server_rows)
    index_rows = sum(written(batch.rows.get("index", {}))[:2])
    worker_side = batch.cpu_of(*WORKER_KINDS, RENDER)
    return PerItem(
        label=label,
        items=n,
        seconds=t,
        requests=sum(batch.requests.values()) / n,
        requests_net=(sum(batch.requests.values()) - requests_rate1 * t) / n,
        routes={route: count / n for route, count in batch.requests.items()},
        server_ms=batch.cpu_of(SERVER) * 1000 / n,
        server_net_ms=(batch.cpu_of(SERVER) - server_rate1 * t) * 1000 / n,
        db_ms=batch.cpu_of(PG_PREFECT) * 1000 / n,
        db_net_ms=(batch.cpu_of(PG_PREFECT) - db_rate1 * t) * 1000 / n,
        index_db_ms=batch.cpu_of(PG_INDEX) * 1000 / n,
        worker_ms=batch.cpu_of(*WORKER_KINDS) * 1000 / n,
        render_ms=batch.cpu_of(RENDER) * 1000 / n,
        worker_net_ms=(worker_side - worker_rate1 * t) * 1000 / n,
        ins=ins / n,
        upd=upd / n,
        dele=dele / n,
        index_rows=index_rows / n,
        xacts=server_rows.get("(transactions committed)", (0,))[0] / n,
        active_ms=server_rows.get("(active time, ms)", (0,))[0] / n,
        idle_server_ms_s=server_rate0 * 1000,
        idle_worker_server_ms_s=(server_rate1 - server_rate0) * 1000,
        idle_worker_requests_s=requests_rate1 - idle0.rate(sum(idle0.requests.values())),
        idle_worker_ms_s=worker_rate1 * 1000,
        idle_db_ms_s=idle0.rate(idle0.cpu_of(PG_PREFECT)) * 1000,
    )


def show_window(w: Window) -> None:
    print(
        f"  {w.label}: {w.seconds:.1f} s, {sum(w.requests.values())} requests, "
        f"our CPU {w.ours:.2f} s, machine busy {w.machine_cpu:.1f} s"
        + (f" ({w.note})" if w.note else "")
    )
    for kind, seconds in sorted(w.cpu.items(), key=lambda i: -i[1]):
        print(f"    {seconds:8.2f} s  {kind}")
    if w.by_worker and len(w.by_worker) > 1:
        print(
            "    by worker: " + ", ".join(f"{k} {v:.1f} s" for k, v in sorted(w.by_worker.items()))
        )
    for db, delta in w.rows.items():
        i, u, d = written(delta)
        print(f"    rows, {db} database: +{i} inserted, {u} updated, {d} deleted (net of tables)")


def table(results: list[PerItem]) -> None:
    def row(label: str, fmt: str, getter) -> None:
        cells = "".join(f"{fmt.format(getter(r)):>16}" for r in results)
        print(f"  {label:<52}{cells}")

    print(f"  {'per item (one worker)':<52}" + "".join(f"{r.label:>16}" for r in results))
    row("items in the batch", "{:.0f}", lambda r: r.items)
    row("batch span, s (noisy)", "{:.1f}", lambda r: r.seconds)
    row("items per hour, one worker (noisy)", "{:.0f}", lambda r: r.items / r.seconds * 3600)
    row("API requests", "{:.1f}", lambda r: r.requests)
    row("  net of the idle worker's polling", "{:.1f}", lambda r: r.requests_net)
    row("rows inserted, server db (SQLite: net rows)", "{:.1f}", lambda r: r.ins)
    row("rows updated, server db (PostgreSQL only)", "{:.1f}", lambda r: r.upd)
    row("rows deleted, server db (PostgreSQL only)", "{:.1f}", lambda r: r.dele)
    row("transactions, server db (PostgreSQL only)", "{:.1f}", lambda r: r.xacts)
    row("statement time, server db, ms (PostgreSQL only)", "{:.1f}", lambda r: r.active_ms)
    row("rows written, item index", "{:.1f}", lambda r: r.index_rows)
    row("server CPU ms", "{:.1f}", lambda r: r.server_ms)
    row("  net of its idle rate (with the worker)", "{:.1f}", lambda r: r.server_net_ms)
    row("database CPU ms, server db (PostgreSQL backends)", "{:.1f}", lambda r: r.db_ms)
    row("  net of its idle rate", "{:.1f}", lambda r: r.db_net_ms)
    row("database CPU ms, item index (PostgreSQL backends)", "{:.1f}", lambda r: r.index_db_ms)
    row("worker CPU ms: worker, warm and flow-run processes", "{:.1f}", lambda r: r.worker_ms)
    row("worker CPU ms: render processes", "{:.1f}", lambda r: r.render_ms)
    row("  worker side in all, net of the idle worker", "{:.1f}", lambda r: r.worker_net_ms)
    print(f"  {'idle (no runs)':<52}")
    row("server CPU ms per s, no worker", "{:.1f}", lambda r: r.idle_server_ms_s)
    row(
        "server CPU ms per s added per polling worker",
        "{:.1f}",
        lambda r: r.idle_worker_server_ms_s,
    )
    row("requests per s per polling worker", "{:.2f}", lambda r: r.idle_worker_requests_s)
    row("worker's own CPU ms per s, idle", "{:.1f}", lambda r: r.idle_worker_ms_s)
    row("database CPU ms per s, server db, no worker", "{:.1f}", lambda r: r.idle_db_ms_s)


def routes(results: list[PerItem], top: int = 14) -> None:
    total: Counter = Counter()
    for r in results:
        total.update(r.routes)
    print(f"  {'API requests per item, by route':<64}" + "".join(f"{r.label:>12}" for r in results))
    for route, _ in total.most_common(top):
        cells = "".join(f"{r.routes.get(route, 0):12.2f}" for r in results)
        print(f"  {route[:64]:<64}{cells}")
    rest = [
        sum(v for k, v in r.routes.items() if k not in dict(total.most_common(top)))
        for r in results
    ]
    print(f"  {'(all other routes)':<64}" + "".join(f"{v:12.2f}" for v in rest))


# ---- per batch, per chunk, per item ---------------------------------------------------

METRICS = (
    ("requests", "API requests"),
    ("ins", "rows inserted, server db"),
    ("upd", "rows updated, server db"),
    ("xacts", "transactions, server db"),
    ("index_rows", "rows inserted+updated, item index"),
    ("S", "server CPU ms"),
    ("D_server", "PostgreSQL CPU ms, server db"),
    ("D_index", "PostgreSQL CPU ms, item index"),
    ("W_flow", "worker, warm and flow-run processes CPU ms"),
    ("R", "render processes CPU ms"),
)


def totals(w: Window, idle1: Window) -> dict[str, float]:
    """A window's totals, net of the idle rates (one worker polling) over its span."""
    t = w.seconds

    def net(*kinds: str) -> float:
        return (w.cpu_of(*kinds) - idle1.rate(idle1.cpu_of(*kinds)) * t) * 1000

    server_rows = w.rows.get("server", {})
    ins, upd, _ = written(server_rows)
    return {
        "requests": sum(w.requests.values()) - idle1.rate(sum(idle1.requests.values())) * t,
        "ins": ins,
        "upd": upd,
        "xacts": server_rows.get("(transactions committed)", (0,))[0],
        "index_rows": sum(written(w.rows.get("index", {}))[:2]),
        "S": net(SERVER),
        "D_server": net(PG_PREFECT),
        "D_index": net(PG_INDEX),
        "W_flow": net(*WORKER_KINDS),
        "R": w.cpu_of(RENDER) * 1000,
    }


def decompose(runs: list[Window], idle1: Window) -> dict[str, tuple[float, float]]:
    """Per chunk and per item, from two batches whose items per chunk differ.

    cost = chunks × chunk + items × item, solved exactly for the two runs; with as many
    chunks in both (the second has one item per chunk), "per item" is their difference
    over the difference in items, free of any fixed cost. The batch flow's own cost (its
    process start, plan, progress, polling its chunks) has no term of its own: it is
    shared among the chunks, which overstates a chunk of a batch with more chunks, so
    the projection errs on the safe side.
    """
    import numpy as np

    shape = np.array([[float(w.chunks), float(w.items)] for w in runs])
    found = {}
    for key, _ in METRICS:
        values = np.array([totals(w, idle1)[key] for w in runs])
        c, i = np.linalg.solve(shape, values)
        found[key] = (float(c), float(i))
    return found


def show_decomposition(parts: dict, runs: list[Window]) -> None:
    shapes = " and ".join(f"{w.items} items in {w.chunks} chunks" for w in runs)
    print(f"PostgreSQL, one worker: cost = chunks × chunk + items × item, from {shapes},")
    print("net of the idle rates; the batch flow's own cost is shared among its chunks")
    print(f"  {'':<46}{'per chunk':>12}{'per item':>12}")
    for key, label in METRICS:
        c, i = parts[key]
        print(f"  {label:<46}{c:12.1f}{i:12.1f}")


def unit_costs(parts: dict | None, pg: PerItem, chunk: int) -> dict[str, float]:
    """Per-item figures for the projection: from the decomposition at `chunk` items a chunk."""
    if parts is None:  # one run only: its own per-item figures
        return {
            "requests": pg.requests_net,
            "ins": pg.ins,
            "upd": pg.upd,
            "xacts": pg.xacts,
            "index_rows": pg.index_rows,
            "S": pg.server_net_ms,
            "D_server": max(pg.db_net_ms, 0.0),
            "D_index": pg.index_db_ms,
            "W_flow": pg.worker_net_ms - pg.render_ms,
            "R": pg.render_ms,
        }
    return {key: max(0.0, c) / chunk + max(0.0, i) for key, (c, i) in parts.items()}


# ---- the projection --------------------------------------------------------------------


def projection(pg: PerItem, unit: dict[str, float], shape: str, args, s3: dict | None) -> dict:
    """One Prefect server on PostgreSQL: items per hour, worker hosts, what fills first."""
    k = args.worker_cores
    s = max(unit["S"], 0.1)
    base, pw = pg.idle_server_ms_s, max(pg.idle_worker_server_ms_s, 0.0)
    w = max(unit["W_flow"] + unit["R"], 1.0)
    d = unit["D_server"] + unit["D_index"]
    print(f"Projection: one Prefect server on PostgreSQL, {shape}")
    print("  The server is one process (API and services in one asyncio loop): it can use one")
    print("  core, 3,600,000 CPU-ms per hour. (`--workers N` needs Redis; not measured.)")
    print(f"  S = server CPU per item, net        {s:8.1f} ms")
    print(f"  B = server idle, no worker          {base:8.1f} ms per s")
    print(f"  P = server CPU per polling worker   {pw:8.1f} ms per s")
    print(f"  W = worker-side CPU per item, net   {w:8.1f} ms  (render {unit['R']:.1f} ms)")
    print(
        f"  D = PostgreSQL CPU per item         {d:8.1f} ms  (server db {unit['D_server']:.1f}"
        f" + item index {unit['D_index']:.1f})"
    )
    per_worker = k * HOUR_MS / w
    print(f"  one worker host of {k} cores, CPU-bound, at this machine's core speed:")
    print(f"    T = {k} × 3,600,000 / W = {k} × 3,600,000 / {w:.1f} = {per_worker:,.0f} items/h")
    server_cap = (HOUR_MS - 3600 * base) / s
    print("  server, alone (no polling cost):")
    print(
        f"    (3,600,000 − 3,600 × B) / S = (3,600,000 − {3600 * base:,.0f}) / {s:.1f}"
        f" = {server_cap:,.0f} items/h"
    )
    n = (HOUR_MS - 3600 * base) / (s * per_worker + 3600 * pw)
    feed = n * per_worker
    print("  workers that fill the server: N × T × S + 3,600 × (B + N × P) = 3,600,000")
    print(
        f"    N = (3,600,000 − 3,600 × B) / (S × T + 3,600 × P)"
        f" = {HOUR_MS - 3600 * base:,.0f} / ({s:.1f} × {per_worker:,.0f} + {3600 * pw:,.0f})"
        f" = {n:.1f} worker hosts"
    )
    print(f"    items per hour at that point: N × T = {feed:,.0f}")
    u = args.headroom
    n_u = (u * HOUR_MS - 3600 * base) / (s * per_worker + 3600 * pw)
    print(
        f"  planning at {u:.0%} of the server's core: N = {n_u:.1f} hosts, "
        f"{n_u * per_worker:,.0f} items/h"
    )
    rows_s = feed * (unit["ins"] + unit["upd"]) / 3600
    print(
        f"  PostgreSQL at {feed:,.0f} items/h: {feed * d / HOUR_MS:.2f} cores of backend CPU"
        f" (= items/h × D / 3,600,000), {rows_s:,.0f} rows inserted+updated per s,"
        f" {feed * unit['xacts'] / 3600:,.0f} transactions per s,"
        f" {feed * unit['requests'] / 3600:,.0f} API requests per s"
        f" (+{pg.idle_worker_requests_s:.1f} per s per polling worker)"
    )
    db_cap = args.db_cores * HOUR_MS / d if d else float("inf")
    limits = {
        "server CPU (one process, one core)": server_cap,
        f"PostgreSQL CPU ({args.db_cores} cores)": db_cap,
        f"worker render CPU (one {k}-core host)": per_worker,
    }
    print("  items per hour at which each resource is full:")
    for name, cap in sorted(limits.items(), key=lambda i: i[1]):
        print(f"    {cap:12,.0f}  {name}")
    first = min((c, name) for name, c in limits.items() if not name.startswith("worker"))
    print(
        f"  first to fill as worker hosts are added: {first[1]}, at {first[0]:,.0f} items/h"
        f" (≈ {n:.1f} hosts of {k} cores); one worker host fills at {per_worker:,.0f} items/h,"
        " so until then the renders are the limit and adding hosts adds throughput"
    )
    if s3:
        extra_cpu = s3["cpu_ms"]
        print(
            "  with outputs on S3 (storage_cost.py, below): per cold item "
            f"+{extra_cpu:.1f} ms client CPU and {s3['requests']:.1f} requests:"
        )
        for latency in (10, 20, 30):
            wall = w + extra_cpu + s3["requests"] * latency
            print(
                f"    at {latency} ms a request, not overlapped: T = {k} × 3,600,000 / "
                f"({w:.1f} + {extra_cpu:.1f} + {s3['requests']:.1f} × {latency}) "
                f"= {k * HOUR_MS / wall:,.0f} items/h per host"
                f" (CPU-bound with enough render processes: {k * HOUR_MS / (w + extra_cpu):,.0f})"
            )
    return {"S": s, "B": base, "P": pw, "W": w, "D": d, "T": per_worker, "N": n, "feed": feed}


def check(pg: PerItem, idle1: Window, two: Window, cores: int, chunks: dict) -> None:
    """Two workers on this machine: measured items per hour and server share vs the model.

    Everything shares this machine's cores, so the model's prediction here is CPU-bound:
    (cores left by other processes × 3,600,000 − the fixed CPU of an hour) ÷ the CPU-ms
    of one item, all from the one-worker run on PostgreSQL (net figures plus idle rates).
    """
    t, n = two.seconds, two.items
    ours = two.ours
    others = max(0.0, two.machine_cpu - ours) / t  # cores the CI run (and this script) took
    available = cores - others
    per_item = pg.server_net_ms + max(pg.db_net_ms, 0) + pg.index_db_ms + pg.worker_net_ms
    server_fixed = pg.idle_server_ms_s + 2 * pg.idle_worker_server_ms_s
    fixed = (
        server_fixed
        + idle1.rate(idle1.cpu_of(PG_PREFECT, PG_INDEX)) * 1000
        + 2 * pg.idle_worker_ms_s
    )
    projected = (available * HOUR_MS - 3600 * fixed) / per_item
    measured = n / t * 3600
    print("Check: two workers on PostgreSQL, one machine")
    print(f"  chunk flow runs per worker: {chunks}")
    print(f"  measured: {n} items in {t:.1f} s = {measured:,.0f} items/h")
    print(
        f"  CPU of this run's processes {ours:.1f} s over {t:.1f} s; the whole machine was busy"
        f" {two.machine_cpu:.1f} s, so other processes (the CI run, this script) took"
        f" {others:.2f} of {cores} cores"
    )
    print(
        f"  model for this machine: per item (net, one-worker run) {per_item:.1f} ms ="
        f" server {pg.server_net_ms:.1f} + server db {max(pg.db_net_ms, 0):.1f}"
        f" + index db {pg.index_db_ms:.1f} + worker side {pg.worker_net_ms:.1f};"
        f" fixed {fixed:.1f} ms per s (server idle with two polling workers {server_fixed:.1f},"
        f" database idle, two idle workers)"
    )
    print(
        f"    ({available:.2f} × 3,600,000 − 3,600 × {fixed:.1f}) / {per_item:.1f}"
        f" = {projected:,.0f} items/h if CPU-bound"
    )
    print(f"  measured / projected: {measured / projected:.2f}")
    server_ms = two.cpu_of(SERVER) * 1000 / n
    server_net = (two.cpu_of(SERVER) - server_fixed / 1000 * t) * 1000 / n
    print(
        f"  server CPU per item: measured {server_ms:.1f} ms gross, {server_net:.1f} ms net"
        f" vs {pg.server_ms:.1f} gross, {pg.server_net_ms:.1f} net with one worker"
    )
    projected_share = (pg.server_net_ms * n + server_fixed * t) / (per_item * n + fixed * t)
    print(
        f"  server share of this run's CPU: measured {two.cpu_of(SERVER) / ours:.1%},"
        f" projected {projected_share:.1%}"
    )
    busy = measured * pg.server_net_ms / HOUR_MS + server_fixed / 1000
    print(
        f"  server's use of its one core: measured {two.cpu_of(SERVER) / t:.1%},"
        f" projected at the measured item rate {busy:.1%}"
    )
    for kind in (PG_PREFECT, PG_INDEX, RENDER):
        one = {PG_PREFECT: pg.db_ms, PG_INDEX: pg.index_db_ms, RENDER: pg.render_ms}[kind]
        print(
            f"  {kind} CPU per item: measured {two.cpu_of(kind) * 1000 / n:.1f} ms"
            f" vs {one:.1f} ms with one worker (gross)"
        )
    rest = two.cpu_of(*WORKER_KINDS) * 1000 / n
    print(
        f"  worker, warm and flow-run processes per item: measured {rest:.1f} ms vs"
        f" {pg.worker_ms:.1f} ms with one worker (gross)"
    )


# ---- S3 per item (bench/storage_cost.py as it is) ----------------------------------------

S3_LINE = re.compile(
    r"^(render loop|publish|resume check|list): (local|S3 temp\+rename|S3)\s+([\d.]+) ms\s+"
    r"([\d.]+) ms\s+([\d.]+) ms\s+(.*)$"
)


def storage_cost(items: int) -> dict | None:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(BENCH / "storage_cost.py"), "--items", str(items)],
        capture_output=True,
        text=True,
        cwd=PROJECT,
    )
    print(f"bench/storage_cost.py --items {items} ({time.monotonic() - started:.0f} s):")
    if done.returncode:
        print(done.stdout[-2000:], done.stderr[-2000:])
        return None
    rows = {}
    for line in done.stdout.splitlines():
        print(f"  {line}")
        if m := S3_LINE.match(line):
            requests = re.match(r"([\d.]+)", m[6])
            rows[(m[1], m[2])] = {
                "wall": float(m[3]),
                "cpu": float(m[5]),
                "requests": float(requests[1]) if requests else 0.0,
            }
    try:
        publish_s3, publish_local = rows[("publish", "S3")], rows[("publish", "local")]
        check_s3, check_local = rows[("resume check", "S3")], rows[("resume check", "local")]
    except KeyError:
        return None
    summary = {
        "requests": publish_s3["requests"],
        "cpu_ms": publish_s3["cpu"] - publish_local["cpu"],
        "wall_ms": publish_s3["wall"] - publish_local["wall"],
        "resume_requests": check_s3["requests"],
        "resume_cpu_ms": check_s3["cpu"] - check_local["cpu"],
        "resume_wall_ms": check_s3["wall"] - check_local["wall"],
    }
    print("  per item, S3 minus local folder:")
    print(
        f"    cold item (publish):       {summary['requests']:.1f} requests,"
        f" +{summary['wall_ms']:.1f} ms wall, +{summary['cpu_ms']:.1f} ms client CPU"
    )
    print(
        f"    unchanged item (resume):   {summary['resume_requests']:.1f} requests,"
        f" +{summary['resume_wall_ms']:.1f} ms wall, +{summary['resume_cpu_ms']:.1f} ms client"
        " CPU (in the batch's plan task, one item after another)"
    )
    return summary


# ---- main ------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--carriers", type=int, default=4)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--chunk-size", type=int, default=12)
    parser.add_argument(
        "--max-parallel",
        type=int,
        default=0,
        help="render processes per chunk (default: the worker's, its cores)",
    )
    parser.add_argument(
        "--project-chunk-size",
        type=int,
        default=0,
        help="chunk size the projection assumes (default: REPORTRUNNER_CHUNK_SIZE's)",
    )
    parser.add_argument("--worker-limit", type=int, default=2, help="flow runs per worker")
    parser.add_argument("--idle-s", type=float, default=15.0, help="each idle window")
    parser.add_argument("--s3-items", type=int, default=8, help="0 skips storage_cost.py")
    parser.add_argument("--worker-cores", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--db-cores", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--headroom", type=float, default=0.7)
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--skip-check", action="store_true")
    parser.add_argument(
        "--skip-decomposition",
        action="store_true",
        help="PostgreSQL: only the one batch, no per-chunk / per-item split",
    )
    args = parser.parse_args()

    cores = os.cpu_count() or 1
    work = Path(tempfile.mkdtemp(prefix="reportrunner-capacity-"))
    os.environ.setdefault("REPORTRUNNER_DATA_DIR", str(PROJECT / "var" / "data"))
    os.environ.update(
        {
            "REPORTRUNNER_HOME": str(work),
            "PREFECT_HOME": str(work / "client-home"),  # this script's own Prefect client
        }
    )
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from deployments.deploy import deploy
    from reports import get_settings
    from reports.definitions import default_catalog

    report = default_catalog().get("carrier-monthly")
    carriers = report.dimension_values("carrier")[: args.carriers]
    months = report.dimension_values("month")[: args.months]
    print(f"{cores} cores; {machine_line()}")
    print(
        f"batch: {len(carriers)} carriers × {len(months)} months = {len(carriers) * len(months)}"
        f" carrier-monthly items ({', '.join(carriers)}), chunk_size {args.chunk_size},"
        f" max_parallel {args.max_parallel or 'default (cores)'}, chunks as flow runs of"
        " render-chunk;"
        f" worker --limit {args.worker_limit}"
    )

    results: list[PerItem] = []
    windows: dict[str, tuple[Window, Window, Window]] = {}
    two: Window | None = None
    chunks: dict = {}
    shapes: list[Window] = []

    def measure(label: str, postgres: dict | None) -> None:
        nonlocal two, chunks
        stack = Stack(label, work / label.lower(), postgres, args)
        try:
            stack.start()
            with temporary_settings(updates={PREFECT_API_URL: stack.server.api_url}):
                os.environ["PREFECT_API_URL"] = stack.server.api_url  # prefect_api reads it
                deploy()
                idle0 = stack.idle("idle, no worker", args.idle_s)
                stack.start_worker("w1", "out")
                stack.wait_for_workers()
                idle1 = stack.idle("idle, one worker polling", args.idle_s)
                size = args.chunk_size
                batch = stack.batch("batch, one worker", carriers, months, size, "out")
                print(f"[{label}]")
                for w in (idle0, idle1, batch):
                    show_window(w)
                windows[label] = (idle0, idle1, batch)
                results.append(per_item(label, idle0, idle1, batch))
                if postgres and not args.skip_decomposition:
                    shapes.append(batch)
                    # As many chunks as the batch, one item each: the difference is items only.
                    few = months[: -(-batch.chunks // len(carriers))]
                    shapes.append(stack.batch("one item per chunk", carriers, few, 1, "out"))
                    show_window(shapes[-1])
                if postgres and not args.skip_check:
                    stack.stop_workers()
                    stack.start_worker("w1", "out-check")
                    stack.start_worker("w2", "out-check")
                    stack.wait_for_workers()
                    two = stack.batch("batch, two workers", carriers, months, size, "out-check")
                    chunks = stack.chunk_workers(two.run.id)
                    show_window(two)
        finally:
            stack.stop()
            os.environ.pop("PREFECT_API_URL", None)

    try:
        if not args.skip_sqlite:
            measure("SQLite", None)
        with scratch_databases() as postgres:
            measure("PostgreSQL", postgres)
        s3 = storage_cost(args.s3_items) if args.s3_items else None
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print()
    print(f"{cores} cores; {machine_line()}")
    table(results)
    print()
    routes(results)
    print()
    pg = next(r for r in results if r.label == "PostgreSQL")
    idle1 = windows["PostgreSQL"][1]
    parts = decompose(shapes, idle1) if len(shapes) == 2 else None
    if parts:
        show_decomposition(parts, shapes)
        print()
    chunk = args.project_chunk_size or get_settings().chunk_size
    unit = unit_costs(parts, pg, chunk)
    if parts:
        shape = f"chunks of {chunk} items"
        print(
            f"Per item in {shape}: item + chunk / {chunk} (a component below zero counts as zero)"
        )
        for key, label in METRICS:
            c, i = parts[key]
            print(f"  {label:<46}{unit[key]:10.1f}  = {max(i, 0):.1f} + {max(c, 0):.1f} / {chunk}")
        print()
    else:
        shape = f"the measured batch's per-item figures ({pg.items} items, chunk {args.chunk_size})"
    projection(pg, unit, shape, args, s3)
    if two is not None:
        print()
        check(pg, windows["PostgreSQL"][1], two, cores, chunks)


if __name__ == "__main__":
    main()
