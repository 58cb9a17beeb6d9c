"""A local SMTP sink: accepts every message and stores it as an `.eml` file, sends nothing on.

The demo and the tests need a mail server that is real (the email channel talks SMTP to
it, exactly as to a production relay) but delivers nowhere: this one, on aiosmtpd, writes
each message it accepts to `<folder>/<UTC time>-<n>-<Message-ID>.eml` (atomically, so a
reader never sees half a file; any mail client opens it) and counts them. `fail_first`
answers "451 4.3.0" to the first N messages, to show the ledger's retries.

As a process: `python -m reports.delivery._smtp_sink --folder DIR --port N [--fail-first N]`
prints one "listening on HOST:PORT" line when it accepts connections and runs until
SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import email.parser
import email.policy
import logging
import os
import re
import signal
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9._@-]")


class _Handler:
    """aiosmtpd handler: refuse the first `fail_first` messages, then store each one."""

    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return self.sink._receive(envelope.mail_from, envelope.rcpt_tos, envelope.content)


class SmtpSink:
    """An SMTP server on `host:port` that stores every message in `folder`."""

    def __init__(
        self,
        folder: str | os.PathLike[str],
        host: str = "127.0.0.1",
        port: int = 8025,
        fail_first: int = 0,
    ) -> None:
        self.folder = Path(folder)
        self.host = host
        self.port = port
        self.fail_first = fail_first
        self.count = 0  # messages stored
        self.refused = 0  # messages answered 451 by fail_first
        self._numbered = 0  # messages given a file number (stored or being stored)
        self._changed = threading.Condition()
        self._controller: Controller | None = None

    # ---- lifecycle --------------------------------------------------------------------

    def start(self) -> SmtpSink:
        if self._controller is not None:
            raise RuntimeError("the SMTP sink is already running")
        self.folder.mkdir(parents=True, exist_ok=True)
        controller = Controller(
            _Handler(self),
            hostname=self.host,
            port=self.port,
            server_hostname="reportrunner-sink",  # not socket.getfqdn(): no DNS lookup
        )
        controller.start()
        self._controller = controller
        return self

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- messages ---------------------------------------------------------------------

    def files(self) -> list[Path]:
        """The stored messages, oldest first."""
        return sorted(self.folder.glob("*.eml"))

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        """Wait until at least `count` messages are stored; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: self.count >= count, timeout)

    def _receive(self, mail_from: str, rcpt_tos: list[str], content: bytes | str) -> str:
        with self._changed:
            if self.refused < self.fail_first:
                self.refused += 1
                self._changed.notify_all()
                return "451 4.3.0 try later (the sink fails the first messages on purpose)"
            self._numbered += 1
            number = self._numbered
        data = content if isinstance(content, bytes) else content.encode("utf-8")
        headers = email.parser.BytesHeaderParser(policy=email.policy.default).parsebytes(data)
        message_id = str(headers.get("Message-ID", "")).strip().strip("<>")
        safe_id = _UNSAFE.sub("_", message_id)[:100] or "no-message-id"
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        target = self.folder / f"{stamp}-{number:05d}-{safe_id}.eml"
        # What the SMTP envelope said, as aiosmtpd's own handlers record it.
        prefix = f"X-MailFrom: {mail_from}\r\nX-RcptTo: {', '.join(rcpt_tos)}\r\n".encode()
        temporary = target.with_name(f".{target.name}.tmp")
        try:
            temporary.write_bytes(prefix + data)
            os.replace(temporary, target)
        except OSError as error:
            log.error("cannot store a message in %s: %s", self.folder, error)
            return "451 4.3.0 the sink cannot store the message"
        with self._changed:
            self.count += 1
            self._changed.notify_all()
        log.info("stored %s (for %s)", target.name, ", ".join(rcpt_tos))
        return "250 2.0.0 OK: stored"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reports.delivery._smtp_sink",
        description="A local SMTP server that stores every message as an .eml file.",
    )
    parser.add_argument("--folder", required=True, type=Path, help="where .eml files go")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8025, help="port to listen on (8025)")
    parser.add_argument(
        "--fail-first", type=int, default=0, metavar="N", help="answer 451 to the first N"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)

    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    sink = SmtpSink(args.folder, host=args.host, port=args.port, fail_first=args.fail_first)
    try:
        sink.start()
    except OSError as error:
        print(f"error: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 1
    try:
        print(f"listening on {args.host}:{args.port}, storing in {args.folder}", flush=True)
        stopping.wait()
    finally:
        sink.stop()
    print(f"stopped after {sink.count} message(s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
