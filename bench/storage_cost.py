"""What an S3 output store costs per item next to a local folder: requests and seconds.

The S3 side is moto's S3 server (`python -m moto.server`, its own process on
127.0.0.1, as a real S3 is another machine), reached through s3fs exactly as a worker
reaches a bucket (`REPORTRUNNER_OUTPUT_URL=s3://…`, `AWS_ENDPOINT_URL_S3`). Requests
are counted as the client sends them (botocore's `before-send` event on s3fs's client:
every HTTP request, retries included), by what they do: GET, HEAD, PUT, DELETE, LIST
(a GET of a listing page), COPY (a PUT with a copy source), BULK-DELETE (a POST).
Seconds are wall time per item and this process's CPU per item; the server is local,
so its wall time holds no network latency: add a real region's latency per request
times the requests (docs/BENCHMARKS.md).

In one warm process, for N carrier-monthly items, each phase alternating the backends
item by item (so the machine's noise hits both alike):

  render loop   render_report per item: load, context, HTML, PDF, publish (the plain
                loop of docs/BENCHMARKS.md), into a local folder and into S3
  publish       only what publish does to the store, with bytes made already: remove
                the manifest, write every file, write the manifest. "S3 temp+rename" is
                the same store forced through its file-system path, as OutputStore
                wrote to S3 before: a temporary object, then s3fs's mv (copy + delete)
  resume check  reports.jobs.current_manifest per item (what a batch's plan task does
                for every item, one after another)
  list          OutputStore.manifests(), once: what the dashboard's outputs page reads

Usage: .venv/bin/python bench/storage_cost.py [--items 16]
"""

from __future__ import annotations

import argparse
import os
import posixpath
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from reports import jobs  # noqa: E402 - after the path set-up
from reports.definitions import default_catalog  # noqa: E402
from reports.render import render_report  # noqa: E402
from reports.store import MANIFEST, OutputStore  # noqa: E402

BUCKET = "reportrunner-bench"
ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}
SENT: Counter = Counter()  # HTTP requests s3fs sent, by method


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=16)
    args = parser.parse_args()

    report = default_catalog().get("carrier-monthly")
    carriers = report.choices("carrier")
    items = [
        report.validate({"carrier": carriers[i % len(carriers)], "month": _month(i)})
        for i in range(args.items)
    ]
    folder = tempfile.mkdtemp(prefix="reportrunner-storage-cost-")
    server, endpoint = _start_moto()
    try:
        os.environ.update({**ENV, "AWS_ENDPOINT_URL_S3": endpoint})
        import boto3

        boto3.client("s3").create_bucket(Bucket=BUCKET)
        s3 = OutputStore(f"s3://{BUCKET}/bench")
        stores = {"local": OutputStore(folder), "S3": s3}
        s3.fs.s3.meta.events.register("before-send.s3", _count)  # one client per process
        render_report(report, items[0], OutputStore(f"s3://{BUCKET}/warm"))  # fonts, CSS, data
        render_report(report, items[0], OutputStore(f"{folder}-warm"))
        rows: dict[tuple[str, str], tuple[list[float], list[float], Counter]] = {}

        def phase(name: str, backends: dict[str, OutputStore], fn) -> None:
            for params in items:
                for backend, store in backends.items():
                    before = Counter(SENT)
                    wall, cpu = time.perf_counter(), time.process_time()
                    fn(store, params)
                    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                    walls, cpus, sent = rows.setdefault((name, backend), ([], [], Counter()))
                    walls.append(wall)
                    cpus.append(cpu)
                    sent.update(SENT - before)

        phase("render loop", stores, lambda s, p: render_report(report, p, s))
        local = stores["local"]
        made = {
            id(p): _payloads(local, local.read_manifest(local.item_dir(report.name, p)))
            for p in items
        }
        old_style = OutputStore(s3.url)
        old_style._object_store = False  # the file-system path: temporary name + mv
        phase(
            "publish",
            {**stores, "S3 temp+rename": old_style},
            lambda s, p: _publish(s, report, p, made[id(p)]),
        )
        leftovers = [p for p in s3.fs.find(s3.root) if p.endswith(".tmp")]
        phase("resume check", stores, lambda s, p: _current(report, p, s))
        for backend, store in stores.items():
            before = Counter(SENT)
            wall, cpu = time.perf_counter(), time.process_time()
            assert len(store.manifests(report.name)) == len(items)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            # One listing for all items: shown per item, as the other rows.
            n = len(items)
            rows[("list", backend)] = ([wall / n] * n, [cpu / n] * n, SENT - before)
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(f"{folder}-warm", ignore_errors=True)

    n = len(items)
    files = len(made[id(items[0])][0])
    print(f"items: {n} carrier-monthly ({files} files + manifest each), warm process")
    print("S3: moto server (own process) on 127.0.0.1, through s3fs; requests counted as sent")
    print(f"{'per item':<28}{'wall (median)':>14}{'wall (mean)':>13}{'CPU (mean)':>12}  requests")
    for (name, backend), (walls, cpus, sent) in rows.items():
        requests = "-"
        if backend != "local":
            split = ", ".join(f"{m} {c / n:g}" for m, c in sorted(sent.items()))
            requests = f"{sum(sent.values()) / n:.2f} ({split})"
        print(
            f"{name + ': ' + backend:<28}{_ms(statistics.median(walls)):>14}"
            f"{_ms(statistics.fmean(walls)):>13}{_ms(statistics.fmean(cpus)):>12}  {requests}"
        )
    loop = {b: statistics.median(rows[("render loop", b)][0]) for b in stores}
    print(
        f"render loop, S3 / local (medians): {loop['S3'] / loop['local']:.3f}× "
        f"({_ms(loop['S3'] - loop['local'])} per item)"
    )
    print(f"temporary objects left behind: {len(leftovers)}")


def _month(i: int) -> str:
    return f"2013-{1 + i // 16:02d}"


def _ms(seconds: float) -> str:
    return f"{1000 * seconds:.1f} ms"


def _count(request, **_) -> None:
    """Count one request by what it does: GET, HEAD, PUT, DELETE, LIST, COPY, BULK-DELETE."""
    kind = request.method
    if kind == "GET" and "list-type=" in request.url:
        kind = "LIST"
    elif kind == "PUT" and "x-amz-copy-source" in {k.lower() for k in request.headers}:
        kind = "COPY"
    elif kind == "POST" and "?delete" in request.url:
        kind = "BULK-DELETE"
    SENT[kind] += 1


def _start_moto() -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise SystemExit("moto's S3 server did not start (is moto[server] installed?)")


def _payloads(store: OutputStore, manifest: dict) -> tuple[list[tuple[str, bytes]], dict]:
    return [(f["path"], store.read_bytes(f["path"])) for f in manifest["files"]], manifest


def _publish(store: OutputStore, report, params, payload) -> None:
    """What reports.render.publish does to the store, with the bytes made already."""
    files, manifest = payload
    item_dir = store.item_dir(report.name, params)
    store.remove(posixpath.join(item_dir, MANIFEST))
    for path, data in files:
        store.write_bytes(path, data)
    store.write_manifest(item_dir, manifest)


def _current(report, params, store: OutputStore) -> None:
    manifest = jobs.current_manifest(report.name, params, store.url)
    assert manifest is not None, "an unchanged item must read as current"


if __name__ == "__main__":
    main()
