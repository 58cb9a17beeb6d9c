"""The delivery channels against real local servers: SMTP (aiosmtpd), HTTP and a folder.

Every server is started by the test on a free port and stopped in its fixture's teardown;
no mocks. The SMTP servers answer what a real relay answers (4xx, 5xx, AUTH, STARTTLS,
implicit TLS with a certificate generated here), so the error classification the ledger
relies on is tested against the real smtplib/aiosmtpd exchange.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import hashlib
import ipaddress
import json
import logging
import queue
import socket
import ssl
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from pydantic import SecretStr

from deployments.prefect_server import free_port
from reports.delivery._archive import ArchiveChannel
from reports.delivery._email import EmailChannel, SmtpSettings
from reports.delivery._envelope import Attachment, Envelope, SendError
from reports.delivery._smtp_sink import SmtpSink
from reports.delivery._webhook import WebhookChannel

PROJECT = Path(__file__).resolve().parents[2]
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"
USER, PASSWORD = "reports", "s3cret-Passw0rd!"
REFUSED = "ops@aa.example.com"


def envelope(recipient: str = "alice@example.com", **changes) -> Envelope:
    values = {
        "delivery_id": "sub1-alice-20260101",
        "subscription": "daily-ops",
        "recipient": recipient,
        "recipient_name": "Alice Example",
        "subject": "Daily ops: 2 reports",
        "text": "Hello Alice,\nyour reports are ready.",
        "html": "<html><body><p>Hello Alice, your reports are ready.</p></body></html>",
        "attachments": (Attachment("ops_JFK.pdf", PDF),),
        "links": ("http://127.0.0.1:8501/outputs?item=ops_JFK",),
    }
    values.update(changes)
    return Envelope(**values)


# ---- an SMTP server that records what it gets and answers what a test wants ------------


@dataclass
class Recorder:
    """aiosmtpd handler: per-address RCPT replies, an optional DATA reply, kept messages."""

    rcpt_replies: dict[str, str] = field(default_factory=dict)
    data_reply: str | None = None
    messages: list[tuple[str, list[str], bytes]] = field(default_factory=list)

    async def handle_RCPT(self, server, session, env, address, rcpt_options):
        reply = self.rcpt_replies.get(address)
        if reply:
            return reply
        env.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, env):
        if self.data_reply:
            return self.data_reply
        self.messages.append((env.mail_from, list(env.rcpt_tos), env.content))
        return "250 2.0.0 OK"


def authenticator(server, session, env, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535


def start_controller(handler, **kwargs) -> Controller:
    controller = Controller(
        handler, hostname="127.0.0.1", port=free_port(), server_hostname="test-smtp", **kwargs
    )
    controller.start()
    return controller


@pytest.fixture
def smtp():
    """A plain SMTP server: (Recorder, settings pointing at it)."""
    recorder = Recorder()
    controller = start_controller(recorder)
    try:
        yield recorder, SmtpSettings(host="127.0.0.1", port=controller.port, timeout_s=10)
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for localhost/127.0.0.1: (cert file, key file)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def server_tls_context(certificate) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


@pytest.fixture
def smtp_starttls(certificate):
    """STARTTLS required, AUTH required (only after TLS): (Recorder, settings)."""
    recorder = Recorder()
    controller = start_controller(
        recorder,
        tls_context=server_tls_context(certificate),
        require_starttls=True,
        auth_required=True,
        auth_require_tls=True,
        authenticator=authenticator,
    )
    try:
        yield (
            recorder,
            SmtpSettings(
                host="127.0.0.1",
                port=controller.port,
                security="starttls",
                username=USER,
                password=PASSWORD,
                ca_file=certificate[0],
                timeout_s=10,
            ),
        )
    finally:
        controller.stop()


@pytest.fixture
def smtp_ssl(certificate):
    """Implicit TLS (SMTPS) with AUTH. aiosmtpd only offers AUTH over TLS it negotiated
    itself (STARTTLS), so on an implicit-TLS socket auth_require_tls must be off."""
    recorder = Recorder()
    controller = start_controller(
        recorder,
        ssl_context=server_tls_context(certificate),
        auth_required=True,
        auth_require_tls=False,
        authenticator=authenticator,
    )
    try:
        yield (
            recorder,
            SmtpSettings(
                host="127.0.0.1",
                port=controller.port,
                security="ssl",
                username=USER,
                password=PASSWORD,
                ca_file=certificate[0],
                timeout_s=10,
            ),
        )
    finally:
        controller.stop()


def parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


def pdf_parts(message) -> list:
    return [part for part in message.iter_attachments() if part.get_filename()]


# ---- email -------------------------------------------------------------------------------


def test_email_arrives_with_headers_body_and_pdf(smtp):
    recorder, settings = smtp
    sent = envelope()
    reference = EmailChannel(settings).send(sent)

    assert reference == "<sub1-alice-20260101@reportrunner>" == sent.message_id
    [(mail_from, rcpt_tos, raw)] = recorder.messages
    assert (mail_from, rcpt_tos) == ("reportrunner@localhost", ["alice@example.com"])
    message = parse(raw)
    assert message["To"] == "Alice Example <alice@example.com>"
    assert message["Subject"] == "Daily ops: 2 reports"
    assert message["Message-ID"] == sent.message_id
    assert message["Date"]
    assert "your reports are ready" in message.get_body(("plain",)).get_content()
    assert sent.links[0] in message.get_body(("plain",)).get_content()
    assert "Hello Alice" in message.get_body(("html",)).get_content()
    [pdf] = pdf_parts(message)
    assert pdf.get_filename() == "ops_JFK.pdf"
    assert pdf.get_content_type() == "application/pdf"
    assert hashlib.sha256(pdf.get_content()).hexdigest() == hashlib.sha256(PDF).hexdigest()


def test_email_links_only_has_no_attachment(smtp):
    recorder, settings = smtp
    EmailChannel(settings, attach=False).send(envelope(html=None))
    message = parse(recorder.messages[0][2])
    assert pdf_parts(message) == []
    assert not message.is_multipart()
    assert "http://127.0.0.1:8501/outputs?item=ops_JFK" in message.get_content()


def test_email_starttls_and_auth(smtp_starttls):
    recorder, settings = smtp_starttls
    assert EmailChannel(settings).send(envelope()) == envelope().message_id
    assert parse(recorder.messages[0][2])["Subject"] == "Daily ops: 2 reports"


def test_email_wrong_password_is_permanent_and_never_shows_it(smtp_starttls, caplog):
    recorder, settings = smtp_starttls
    wrong = "Wr0ng-" + PASSWORD
    bad = settings.model_copy(update={"password": SecretStr(wrong)})
    channel = EmailChannel(bad)
    with caplog.at_level(logging.DEBUG), pytest.raises(SendError) as caught:
        channel.send(envelope())

    error = caught.value
    assert error.transient is False
    assert str(error).startswith("SMTP 535 authenticating as reports at 127.0.0.1:")
    assert "\n" not in str(error)
    for text in (str(error), repr(error), repr(channel), repr(bad), str(error.__context__)):
        assert wrong not in text and PASSWORD not in text
    ours = [r for r in caplog.records if not r.name.startswith("mail.")]  # aiosmtpd: mail.log
    assert all(wrong not in r.getMessage() for r in ours)
    assert recorder.messages == []


def test_email_starttls_with_untrusted_certificate_is_permanent(smtp_starttls):
    _, settings = smtp_starttls
    untrusted = settings.model_copy(update={"ca_file": None})  # system trust: self-signed fails
    with pytest.raises(SendError) as caught:
        EmailChannel(untrusted).send(envelope())
    assert caught.value.transient is False
    assert "not trusted" in str(caught.value)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_email_implicit_tls(smtp_ssl):
    recorder, settings = smtp_ssl
    EmailChannel(settings).send(envelope())
    [(_, rcpt_tos, raw)] = recorder.messages
    assert rcpt_tos == ["alice@example.com"]
    assert len(pdf_parts(parse(raw))) == 1


@pytest.mark.parametrize(
    ("security", "expected"),
    [("ssl", "TLS handshake with 127.0.0.1"), ("starttls", "STARTTLS extension not supported")],
)
def test_email_security_that_does_not_fit_the_port_is_permanent(smtp, security, expected):
    _, settings = smtp  # a plain server: no implicit TLS, no STARTTLS
    with pytest.raises(SendError) as caught:
        EmailChannel(settings.model_copy(update={"security": security})).send(envelope())
    assert caught.value.transient is False
    assert expected in str(caught.value)


def test_smtp_settings_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("REPORTRUNNER_SMTP_HOST", "mail.example.com")
    monkeypatch.setenv("REPORTRUNNER_SMTP_PORT", "587")
    monkeypatch.setenv("REPORTRUNNER_SMTP_SECURITY", "starttls")
    monkeypatch.setenv("REPORTRUNNER_SMTP_PASSWORD", PASSWORD)
    monkeypatch.setenv("REPORTRUNNER_SMTP_CA_FILE", str(tmp_path / "ca.pem"))
    settings = SmtpSettings()
    assert (settings.host, settings.port) == ("mail.example.com", 587)
    assert settings.security == "starttls"
    assert settings.password.get_secret_value() == PASSWORD
    assert settings.ca_file == tmp_path / "ca.pem"
    assert PASSWORD not in repr(settings) and PASSWORD not in repr(EmailChannel(settings))


def test_email_server_down_is_transient():
    settings = SmtpSettings(host="127.0.0.1", port=free_port(), timeout_s=5)  # nobody listens
    with pytest.raises(SendError) as caught:
        EmailChannel(settings).send(envelope())
    assert caught.value.transient is True
    assert "unreachable" in str(caught.value)


def test_email_silent_server_times_out_transient():
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never greets
        port = silent.getsockname()[1]
        settings = SmtpSettings(host="127.0.0.1", port=port, timeout_s=0.5)
        with pytest.raises(SendError) as caught:
            EmailChannel(settings).send(envelope())
    assert caught.value.transient is True
    assert "timed out" in str(caught.value)


def test_email_451_on_data_is_transient(smtp):
    recorder, settings = smtp
    recorder.data_reply = "451 4.3.0 try later"
    with pytest.raises(SendError) as caught:
        EmailChannel(settings).send(envelope())
    assert caught.value.transient is True
    assert str(caught.value) == "SMTP 451 for alice@example.com: 4.3.0 try later"


def test_email_550_for_one_address_is_permanent_with_server_text(smtp):
    recorder, settings = smtp
    recorder.rcpt_replies[REFUSED] = "550 5.1.1 mailbox unavailable"
    channel = EmailChannel(settings)
    with pytest.raises(SendError) as caught:
        channel.send(envelope(REFUSED))
    assert caught.value.transient is False
    assert str(caught.value) == f"SMTP 550 for {REFUSED}: 5.1.1 mailbox unavailable"
    channel.send(envelope("bob@example.com"))  # the same server still takes other addresses
    assert [m[1] for m in recorder.messages] == [["bob@example.com"]]


def test_email_4xx_for_an_address_is_transient(smtp):
    recorder, settings = smtp
    recorder.rcpt_replies[REFUSED] = "450 4.2.1 mailbox busy"
    with pytest.raises(SendError) as caught:
        EmailChannel(settings).send(envelope(REFUSED))
    assert caught.value.transient is True
    assert str(caught.value) == f"SMTP 450 for {REFUSED}: 4.2.1 mailbox busy"


def test_email_bad_address_is_permanent_before_connecting():
    with pytest.raises(SendError) as caught:  # port 9 is never contacted
        EmailChannel(SmtpSettings(port=9)).send(envelope("not an address"))
    assert caught.value.transient is False
    assert "not an email address" in str(caught.value)


def test_email_header_injection_is_flattened(smtp):
    recorder, settings = smtp
    EmailChannel(settings).send(envelope(subject="Hi\r\nBcc: evil@example.com"))
    message = parse(recorder.messages[0][2])
    assert message["Bcc"] is None
    assert recorder.messages[0][1] == ["alice@example.com"]


# ---- the SMTP sink -------------------------------------------------------------------------


def test_sink_stores_eml_files_and_counts_them(tmp_path):
    with SmtpSink(tmp_path / "mail", port=free_port()) as sink:
        channel = EmailChannel(SmtpSettings(port=sink.port, timeout_s=10))
        channel.send(envelope())
        channel.send(envelope("bob@example.com", delivery_id="sub1-bob-20260101"))
        assert sink.wait_for(2, timeout=10)
        assert sink.count == 2
        files = sink.files()
    assert [f.suffix for f in files] == [".eml", ".eml"]
    assert "sub1-alice-20260101@reportrunner" in files[0].name
    message = parse(files[1].read_bytes())
    assert message["Message-ID"] == "<sub1-bob-20260101@reportrunner>"
    assert message["X-RcptTo"] == "bob@example.com"
    assert hashlib.sha256(pdf_parts(message)[0].get_content()).digest() == (
        hashlib.sha256(PDF).digest()
    )
    assert not list((tmp_path / "mail").glob(".*.tmp"))


def test_sink_process_fail_first_answers_451(tmp_path):
    port = free_port()
    folder = tmp_path / "mail"
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "reports.delivery._smtp_sink"),
            *("--folder", str(folder), "--port", str(port), "--fail-first", "1"),
        ],
        cwd=PROJECT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in process.stdout], daemon=True).start()
    try:
        assert lines.get(timeout=30).startswith(f"listening on 127.0.0.1:{port}")
        channel = EmailChannel(SmtpSettings(port=port, timeout_s=10))
        with pytest.raises(SendError) as caught:
            channel.send(envelope())
        assert caught.value.transient is True
        assert str(caught.value).startswith("SMTP 451 for alice@example.com: 4.3.0 try later")
        assert channel.send(envelope()) == envelope().message_id  # the retry goes through
        assert len(list(folder.glob("*.eml"))) == 1
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert lines.get(timeout=10) == "stopped after 1 message(s)\n"
    assert process.returncode == 0


# ---- webhook -------------------------------------------------------------------------------

SECRET_PATH = "/services/T0001/B0002/XyZsecretToken"


class _Hook(BaseHTTPRequestHandler):
    received: list[tuple[str, dict]]  # set per server

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((self.path, json.loads(body)))
        status = int(self.path.rsplit("-", 1)[-1]) if "-" in self.path else 200
        reply = b"ok" if status == 200 else f"no_service: cannot POST {self.path}".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):  # keep the test output quiet
        pass


@pytest.fixture
def hook_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    server.received = []
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_webhook_posts_text_and_links(hook_server, caplog):
    server, base = hook_server
    channel = WebhookChannel(base + SECRET_PATH, name="ops-slack")
    with caplog.at_level(logging.DEBUG):
        reference = channel.send(envelope())
    assert reference == f"{base} 200"
    [(path, body)] = server.received
    assert path == SECRET_PATH
    assert body == {
        "text": "Daily ops: 2 reports\nHello Alice,\nyour reports are ready.\n"
        "http://127.0.0.1:8501/outputs?item=ops_JFK"
    }
    assert channel.name == "ops-slack"
    assert SECRET_PATH not in repr(channel)
    assert any("HTTP Request" in r.getMessage() for r in caplog.records)  # httpx logged...
    assert all("XyZsecret" not in r.getMessage() for r in caplog.records)  # ...redacted


@pytest.mark.parametrize(("status", "transient"), [(500, True), (429, True), (404, False)])
def test_webhook_errors_are_classified_and_never_show_the_url(hook_server, status, transient):
    _, base = hook_server
    with pytest.raises(SendError) as caught:
        WebhookChannel(f"{base}{SECRET_PATH}-{status}").send(envelope())
    error = caught.value
    assert error.transient is transient
    assert f"HTTP {status}" in str(error)
    assert "no_service" in str(error)  # the server's own words, with its echo of the path...
    assert "XyZsecret" not in str(error)  # ...removed
    assert error.__cause__ is None


def test_webhook_connection_refused_is_transient():
    url = f"http://127.0.0.1:{free_port()}{SECRET_PATH}"
    with pytest.raises(SendError) as caught:
        WebhookChannel(url).send(envelope())
    assert caught.value.transient is True
    assert "XyZsecret" not in str(caught.value)


def test_webhook_rejects_a_non_http_url_without_echoing_it():
    with pytest.raises(SendError) as caught:
        WebhookChannel("ftp://example.com" + SECRET_PATH)
    assert caught.value.transient is False
    assert "XyZsecret" not in str(caught.value)


# ---- archive -------------------------------------------------------------------------------


def test_archive_copies_files_and_writes_a_receipt(tmp_path):
    root = tmp_path / "archive"
    reference = ArchiveChannel(str(root)).send(envelope())
    [target] = list(root.glob("daily-ops/alice*/ops_JFK.pdf"))
    assert reference == target.as_uri()
    assert hashlib.sha256(target.read_bytes()).hexdigest() == hashlib.sha256(PDF).hexdigest()
    receipt = json.loads((target.parent / "sub1-alice-20260101.json").read_text())
    assert receipt["message_id"] == "<sub1-alice-20260101@reportrunner>"
    assert receipt["files"][0]["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert receipt["files"][0]["uri"] == reference
    assert not list(root.rglob("*.tmp"))


def test_archive_recipient_cannot_leave_the_root(tmp_path):
    root = tmp_path / "archive"
    ArchiveChannel(str(root)).send(envelope("../../etc", subscription="../up"))
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written and all(root in p.parents for p in written)


def test_archive_path_error_is_permanent(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(SendError) as caught:
        ArchiveChannel(str(blocker / "archive")).send(envelope())
    assert caught.value.transient is False
