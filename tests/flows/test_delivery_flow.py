"""The `deliver` flow against a real SMTP server (aiosmtpd) and the real ledger.

Each test declares its own subscription (a YAML file in a temporary deliveries
folder) on the test-only `flaky-carrier` report, bursting to one contact per carrier,
and reads back what the server received: who got which PDF, and its sha256.
"""

from __future__ import annotations

import email
import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from email import policy
from email.message import Message
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from prefect.states import StateType

from deployments.prefect_server import free_port
from flows import deliver
from reports.delivery import Ledger
from reports.index import open_index
from reports.settings import get_settings

pytestmark = pytest.mark.usefixtures("prefect_server")  # a real Prefect server

MONTH = "2013-03"
CONTACTS = {"AA": "ops-aa@example.com", "DL": "ops-dl@example.com", "UA": "ops-ua@example.com"}


class Inbox:
    """An SMTP handler that keeps every message; it can refuse one address or go slowly."""

    def __init__(self, refuse: str | None = None, delay_s: float = 0.0) -> None:
        self.messages: list[Message] = []
        self.refuse = refuse
        self.delay_s = delay_s
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, env, address, rcpt_options):
        if address == self.refuse:
            return "550 5.1.1 mailbox unavailable"
        env.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, env):
        if self.delay_s:
            time.sleep(self.delay_s)  # blocks this server's loop: a slow mail server
        with self.lock:
            self.messages.append(email.message_from_bytes(env.content, policy=policy.default))
        return "250 Message accepted"

    def to(self, address: str) -> list[Message]:
        with self.lock:
            return [m for m in self.messages if address in m["To"]]


def _pdfs(message: Message) -> dict[str, str]:
    return {
        part.get_filename(): hashlib.sha256(part.get_payload(decode=True)).hexdigest()
        for part in message.walk()
        if part.get_content_type() == "application/pdf"
    }


@pytest.fixture
def smtp(monkeypatch):
    """Start an SMTP server on a free port (call it; again to restart); stopped after."""
    port = free_port()
    monkeypatch.setenv("REPORTRUNNER_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("REPORTRUNNER_SMTP_PORT", str(port))
    running: list[Controller] = []

    def start(handler: Inbox) -> Inbox:
        controller = Controller(handler, hostname="127.0.0.1", port=port)
        controller.start()
        running.append(controller)
        return handler

    start.port = port
    yield start
    for controller in running:
        controller.stop()


@pytest.fixture
def subscription(tmp_path, monkeypatch, output_root):
    """A subscription file in a deliveries folder of this test's own; returns its name."""
    name = f"test-contacts-{uuid.uuid4().hex[:8]}"
    folder = tmp_path / "deliveries"
    folder.mkdir()
    rows = "\n".join(f"{address},{carrier} ops,{carrier}" for carrier, address in CONTACTS.items())
    (folder / "contacts.csv").write_text(f"email,name,carrier\n{rows}\n")
    (folder / f"{name}.yaml").write_text(
        f"name: {name}\nreport: flaky-carrier\nparameters: {{month: '{MONTH}'}}\n"
        "recipients: {csv: contacts.csv, address: email, name: name}\n"
        "channel: {kind: email, attach: true}\n"
    )
    monkeypatch.setenv("REPORTRUNNER_DELIVERIES_DIR", str(folder))
    get_settings.cache_clear()
    yield name
    get_settings.cache_clear()


def _manifest_sha(output_root: Path, carrier: str) -> str:
    pdf = output_root / f"flaky-carrier/carrier={carrier}/month={MONTH}"
    return hashlib.sha256(next(pdf.glob("*.pdf")).read_bytes()).hexdigest()


def test_each_recipient_gets_exactly_their_own_pdf_once(smtp, subscription, output_root):
    inbox = smtp(Inbox())
    state = deliver(subscription=subscription, return_state=True)
    assert state.type == StateType.COMPLETED, state.message
    assert state.message.startswith("3 of 3 sent, 0 failed, 0 held")
    for carrier, address in CONTACTS.items():
        (message,) = inbox.to(address)
        (name, sha) = next(iter(_pdfs(message).items()))
        assert name == f"flaky-carrier_{carrier}_{MONTH}.pdf"
        assert sha == _manifest_sha(output_root, carrier)  # the very file the manifest lists
        assert message["Message-ID"].endswith("@reportrunner>")
        assert f"carrier={carrier} month={MONTH}" in message.get_body(("plain",)).get_content()

    # Unchanged: a second run sends nothing.
    again = deliver(subscription=subscription, return_state=True)
    assert again.type == StateType.COMPLETED
    assert len(inbox.messages) == 3

    # DL's data changes: only DL's contact hears of it.
    trim = get_settings().resolved_data_dir / "trim-DL"
    trim.write_text("10")
    try:
        changed = deliver(subscription=subscription, return_state=True)
    finally:
        trim.unlink()
    assert changed.type == StateType.COMPLETED
    assert len(inbox.to(CONTACTS["DL"])) == 2 and len(inbox.messages) == 4
    rows, _ = Ledger(open_index()).rows(subscription=subscription, statuses=("sent",))
    assert len(rows) == 4 and all(row.attempts == 1 for row in rows)


def test_a_server_down_at_first_is_retried_and_delivers(smtp, subscription):
    ledger = Ledger(open_index())
    inbox = Inbox()

    def start_when_first_attempt_failed() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            rows, _ = ledger.rows(subscription=subscription, statuses=("failed",))
            if rows:
                smtp(inbox)
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=start_when_first_attempt_failed, daemon=True)
    watcher.start()
    state = deliver(subscription=subscription, return_state=True)
    watcher.join(timeout=5)
    assert state.type == StateType.COMPLETED, state.message
    rows, _ = ledger.rows(subscription=subscription)
    assert {row.status for row in rows} == {"sent"}
    assert max(row.attempts for row in rows) == 2  # the first attempt met a closed port
    assert len(inbox.messages) == 3


def test_a_refused_address_fails_alone_with_the_servers_words(smtp, subscription):
    inbox = smtp(Inbox(refuse=CONTACTS["UA"]))
    state = deliver(subscription=subscription, return_state=True)
    assert state.type == StateType.FAILED  # so the failure webhook hears of it
    assert "2 of 3 sent, 1 failed" in state.message
    rows, _ = Ledger(open_index()).rows(subscription=subscription)
    by_recipient = {row.recipient: row for row in rows}
    failed = by_recipient[CONTACTS["UA"]]
    assert failed.status == "failed" and failed.attempts == 1  # permanent: not retried
    assert "550" in failed.last_error and "mailbox unavailable" in failed.last_error
    assert {by_recipient[CONTACTS[c]].status for c in ("AA", "DL")} == {"sent"}
    assert len(inbox.messages) == 2


def test_a_killed_delivery_rerun_delivers_everything_with_at_most_one_duplicate(
    smtp, subscription, prefect_server
):
    inbox = smtp(Inbox(delay_s=1.5))  # slow enough to kill it mid-way
    env = {**os.environ, "PREFECT_API_URL": prefect_server.api_url}
    command = [sys.executable, "-m", "deployments.cli", "deliver", subscription]
    first = subprocess.Popen(
        command,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 180
        while len(inbox.messages) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert inbox.messages, "the first run sent nothing before the deadline"
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    killed_with = len(inbox.messages)
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    counts = {address: len(inbox.to(address)) for address in CONTACTS.values()}
    assert all(n >= 1 for n in counts.values()), counts
    assert sum(counts.values()) - len(CONTACTS) <= 1, (killed_with, counts)


def test_dry_run_lists_who_would_get_what_and_sends_nothing(smtp, subscription):
    inbox = smtp(Inbox())
    state = deliver(subscription=subscription, dry_run=True, return_state=True)
    plan = state.result()["plan"]
    assert len(plan) == 3 and all(line.startswith("queued") for line in plan)
    assert any(CONTACTS["AA"] in line and "carrier=AA" in line for line in plan)
    assert inbox.messages == []
    assert Ledger(open_index()).rows(subscription=subscription)[1] == 0


def test_a_held_item_waits_for_an_operator(smtp, tmp_path, monkeypatch, output_root):
    """OO flew nothing in February 2013: its PDF is flagged, so it is held, not sent."""
    inbox = smtp(Inbox())
    name = f"hold-probe-{uuid.uuid4().hex[:8]}"
    folder = tmp_path / "held"
    folder.mkdir()
    (folder / f"{name}.yaml").write_text(
        f"name: {name}\nreport: carrier-monthly\nparameters: {{month: '2013-02'}}\n"
        "recipients: {list: [{address: ops-oo@example.com, carrier: OO},"
        " {address: ops-aa@example.com, carrier: AA}]}\n"
        "channel: {kind: email}\nconditions: {skip_empty: false}\n"
    )
    monkeypatch.setenv("REPORTRUNNER_DELIVERIES_DIR", str(folder))
    get_settings.cache_clear()
    try:
        first = deliver(subscription=name, return_state=True)
        assert first.type == StateType.COMPLETED, first.message
        assert "1 of 2 sent, 0 failed, 1 held" in first.message
        ledger = Ledger(open_index())
        (held,) = ledger.rows(subscription=name, statuses=("held",))[0]
        assert held.recipient == "ops-oo@example.com" and "quality gate" in held.reason
        assert inbox.to("ops-oo@example.com") == []

        again = deliver(subscription=name, return_state=True)  # still held: still not sent
        assert inbox.to("ops-oo@example.com") == [] and "1 held" in again.message

        assert ledger.decide([held.delivery_id], approve=True, who="olga") == 1
        approved = deliver(subscription=name, return_state=True)
        assert approved.type == StateType.COMPLETED, approved.message
        assert len(inbox.to("ops-oo@example.com")) == 1 and len(inbox.to("ops-aa@example.com")) == 1
        (row,) = ledger.rows(subscription=name, recipient="ops-oo")[0]
        assert (row.status, row.decided_by) == ("sent", "olga")
    finally:
        get_settings.cache_clear()
