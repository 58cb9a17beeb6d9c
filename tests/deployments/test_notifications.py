"""Failure notifications: a failed `report` run reaches a webhook through a Prefect automation.

A local HTTP listener stands in for Slack/Teams; the session's real Prefect server
runs the automation (its triggers and actions services), so the whole path is real:
flow run → Failed event → trigger → SendNotification → custom webhook block → POST.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prefect import get_client
from prefect.states import StateType

from deployments.notifications import AUTOMATION_NAME, BLOCK_NAME, ensure_failure_notifications
from flows import batch, report


@dataclass
class Listener:
    url: str
    received: queue.Queue = field(default_factory=queue.Queue)
    seen: list[tuple[str, dict]] = field(default_factory=list)

    def wait_for(self, needle: str, timeout: float) -> list[tuple[str, dict]]:
        """Every POST so far whose text mentions `needle`, waiting until one arrives."""
        deadline = time.monotonic() + timeout
        while True:
            self.drain(max(0.0, min(0.5, deadline - time.monotonic())))
            hits = [(path, body) for path, body in self.seen if needle in body.get("text", "")]
            if hits or time.monotonic() >= deadline:
                return hits

    def drain(self, wait: float) -> None:
        try:
            path, raw = self.received.get(timeout=wait) if wait else self.received.get_nowait()
            self.seen.append((path, json.loads(raw)))
            while True:
                path, raw = self.received.get_nowait()
                self.seen.append((path, json.loads(raw)))
        except queue.Empty:
            pass


@pytest.fixture
def webhook() -> Iterator[Listener]:
    received: queue.Queue = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received.put((self.path, body))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):  # keep the test output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Listener(f"http://127.0.0.1:{server.server_address[1]}", received)
    finally:
        ensure_failure_notifications(None)  # later tests' failures must not post anywhere
        server.shutdown()
        server.server_close()


def _automations():
    with get_client(sync_client=True) as client:
        return client.read_automations_by_name(AUTOMATION_NAME)


def _blocks():
    with get_client(sync_client=True) as client:
        return [
            b for b in client.read_block_documents(include_secrets=False) if b.name == BLOCK_NAME
        ]


def test_failed_report_run_posts_to_webhook_once(webhook: Listener, output_root):
    first = ensure_failure_notifications(f"{webhook.url}/old")
    assert "created" in first
    (automation,) = _automations()
    # A new URL updates the block in place; the same URL again changes nothing.
    assert "updated" in ensure_failure_notifications(f"{webhook.url}/hook")
    assert "unchanged" in ensure_failure_notifications(f"{webhook.url}/hook")
    assert [a.id for a in _automations()] == [automation.id]
    assert automation.enabled
    (block,) = _blocks()
    assert str(webhook.url.rsplit(":", 1)[1]) not in json.dumps(block.data, default=str)

    ok = report(
        report="carrier-monthly",
        parameters={"carrier": "AS", "month": "2013-01"},
        formats=["html"],
        return_state=True,
    )
    assert ok.type == StateType.COMPLETED, ok.message
    failed = report(
        report="carrier-monthly",
        parameters={"carrier": "ZZ", "month": "2013-07"},
        return_state=True,
    )
    assert failed.type == StateType.FAILED

    failed_id = str(failed.state_details.flow_run_id)
    hits = webhook.wait_for(failed_id, timeout=60)
    assert hits, f"no webhook message within 60 s; got {webhook.seen}"
    path, body = hits[0]
    assert path == "/hook"
    text = body["text"]
    assert text.startswith("reportrunner: report `carrier-monthly carrier=ZZ month=2013-07` Failed")
    assert "parameter 'carrier' is 'ZZ'" in text
    assert "report: carrier-monthly · parameters: carrier=ZZ, month=2013-07" in text
    assert f"/runs/flow-run/{failed_id}" in text

    # A batch is watched too; its message shows what it fans out over.
    failed_batch = batch(
        report="carrier-monthly",
        over={"carrier": ["AA", "ZZ"]},
        parameters={"month": "2013-07"},
        max_parallel=1,
        return_state=True,
    )
    assert failed_batch.type == StateType.FAILED
    batch_id = str(failed_batch.state_details.flow_run_id)
    hits = webhook.wait_for(batch_id, timeout=60)
    assert hits, f"no webhook message for the batch within 60 s; got {webhook.seen}"
    text = hits[0][1]["text"]
    assert text.startswith("reportrunner: batch `carrier-monthly batch over carrier")
    assert "over: carrier=AA,ZZ" in text and "parameters: month=2013-07" in text

    # The successful run ended before the failed one started: its events were handled
    # first, so a short grace period is enough to be sure it posted nothing.
    webhook.drain(3)
    ok_id = str(ok.state_details.flow_run_id)
    assert not [t for _, t in webhook.seen if ok_id in t["text"]]
    assert len([t for _, t in webhook.seen if failed_id in t["text"]]) == 1


def test_no_webhook_removes_automation_and_block(webhook: Listener):
    ensure_failure_notifications(f"{webhook.url}/hook")
    assert len(_automations()) == 1 and len(_blocks()) == 1

    assert "removed" in ensure_failure_notifications(None)
    assert _automations() == [] and _blocks() == []
    assert "none configured" in ensure_failure_notifications("")
