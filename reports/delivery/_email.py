"""The email channel: one envelope becomes one SMTP message, and a failure says if a retry helps.

Why it looks the way it does:

* The `Message-ID` is the envelope's deterministic one, so a resend after a crash carries
  the same id and a recipient's mail client (or the sink) can tell it is the same message.
* The ledger retries transient failures and fails permanent ones at once, so every error
  is classified here, by the SMTP reply code where there is one (4xx: try later, 5xx:
  give up) and by kind where there is not (refused connection, timeout: try later).
  The `SendError` quotes the server's code and text on one line, because that is what
  an operator needs to fix a bad address.
* The password is a `SecretStr` and only ever reaches `smtplib.login`; no message built
  here contains it, and any server text that echoed it would be redacted.
"""

from __future__ import annotations

import html
import mimetypes
import smtplib
import ssl
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path, PurePosixPath
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from reports.delivery._envelope import Envelope, SendError

# TLS errors that mean "this port does not speak TLS like that", not a network hiccup.
_TLS_MISMATCH = {
    "WRONG_VERSION_NUMBER",
    "UNSUPPORTED_PROTOCOL",
    "TLSV1_ALERT_PROTOCOL_VERSION",
    "NO_PROTOCOLS_AVAILABLE",
    "HTTP_REQUEST",
}


class SmtpSettings(BaseSettings):
    """Where and how to send mail, from `REPORTRUNNER_SMTP_*` environment variables."""

    model_config = SettingsConfigDict(env_prefix="REPORTRUNNER_SMTP_", extra="ignore")

    host: str = Field(default="127.0.0.1", description="SMTP server (default: the local sink).")
    port: int = Field(default=8025, ge=1, le=65535, description="SMTP server port.")
    security: Literal["none", "starttls", "ssl"] = Field(
        default="none",
        description="none (plain, for the local sink), starttls (usually port 587) "
        "or ssl (implicit TLS, usually port 465).",
    )
    username: str | None = Field(default=None, description="Log in as this user when set.")
    password: SecretStr | None = Field(default=None, description="The SMTP password.")
    sender: str = Field(default="reportrunner@localhost", description="The From address.")
    ca_file: Path | None = Field(
        default=None,
        description="A CA or certificate file to trust, for a private server "
        "(default: the system's trust store).",
    )
    timeout_s: float = Field(default=30.0, gt=0, description="Socket timeout of one send.")


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _clean_header(text: str) -> str:
    """Header values may not contain line breaks (they would inject headers)."""
    return " ".join(text.split())


def _server_text(reply: bytes | str) -> str:
    if isinstance(reply, bytes):
        reply = reply.decode("utf-8", "replace")
    return _one_line(reply)


class EmailChannel:
    """Sends each envelope as one email through the configured SMTP server."""

    name = "email"

    def __init__(self, settings: SmtpSettings | None = None, attach: bool = True) -> None:
        self.settings = settings if settings is not None else SmtpSettings()
        self.attach = attach

    def __repr__(self) -> str:
        s = self.settings
        return f"EmailChannel({s.host}:{s.port}, security={s.security}, attach={self.attach})"

    # ---- the message ------------------------------------------------------------------

    def build_message(self, envelope: Envelope) -> EmailMessage:
        """The message exactly as it will be sent (public so the engine can preview it)."""
        msg = EmailMessage()
        msg["From"] = self.settings.sender
        try:
            msg["To"] = Address(
                display_name=_clean_header(envelope.recipient_name or ""),
                addr_spec=envelope.recipient.strip(),
            )
        except (ValueError, IndexError) as error:
            raise SendError(
                f"not an email address: {envelope.recipient!r} ({_one_line(str(error))})",
                transient=False,
            ) from None
        msg["Subject"] = _clean_header(envelope.subject)
        msg["Date"] = formatdate(localtime=True)
        msg["Message-ID"] = envelope.message_id

        links = envelope.links
        text = envelope.text
        missing = [link for link in links if link not in text]
        if missing:
            text = text.rstrip("\n") + "\n\n" + "\n".join(missing) + "\n"
        msg.set_content(text)
        if envelope.html is not None:
            msg.add_alternative(_html_with_links(envelope.html, links), subtype="html")
        if self.attach:
            for attachment in envelope.attachments:
                maintype, _, subtype = attachment.mime_type.partition("/")
                if not subtype:
                    guessed = mimetypes.guess_type(attachment.filename)[0]
                    maintype, _, subtype = (guessed or "application/octet-stream").partition("/")
                msg.add_attachment(
                    attachment.data,
                    maintype=maintype,
                    subtype=subtype,
                    filename=_clean_header(PurePosixPath(attachment.filename).name) or "file",
                )
        return msg

    # ---- the send ---------------------------------------------------------------------

    def send(self, envelope: Envelope) -> str:
        """Send one envelope; return its Message-ID, or raise a classified `SendError`."""
        msg = self.build_message(envelope)
        s = self.settings
        where = f"{s.host}:{s.port}"
        context = self._tls_context() if s.security != "none" else None
        try:
            if s.security == "ssl":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    s.host, s.port, timeout=s.timeout_s, context=context
                )
            else:
                smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout_s)
            with smtp:
                if s.security == "starttls":
                    smtp.ehlo()
                    smtp.starttls(context=context)
                    smtp.ehlo()
                if s.username:
                    password = s.password.get_secret_value() if s.password else ""
                    smtp.login(s.username, password)
                refused = smtp.send_message(
                    msg, from_addr=s.sender, to_addrs=[envelope.recipient.strip()]
                )
        except Exception as error:
            raise self._classify(error, envelope, where) from None
        if refused:  # only some recipients refused; with one recipient smtplib raises
            raise self._classify(smtplib.SMTPRecipientsRefused(refused), envelope, where)
        return envelope.message_id

    def _tls_context(self) -> ssl.SSLContext:
        ca_file = self.settings.ca_file
        try:
            return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        except (OSError, ssl.SSLError) as error:
            raise SendError(
                f"cannot use ca_file {ca_file}: {_one_line(str(error))}", transient=False
            ) from None

    def _classify(self, error: Exception, envelope: Envelope, where: str) -> SendError:
        """Turn whatever smtplib raised into a transient or permanent `SendError`."""
        recipient = envelope.recipient.strip()
        transient: bool
        if isinstance(error, SendError):
            return error
        if isinstance(error, smtplib.SMTPRecipientsRefused):
            code, reply = next(iter(error.recipients.values()), (0, b"recipient refused"))
            who = ", ".join(error.recipients) or recipient
            message = f"SMTP {code} for {who}: {_server_text(reply)}"
            transient = 400 <= code < 500
        elif isinstance(error, smtplib.SMTPAuthenticationError):
            # 535 (bad credentials) and other 5xx cannot be fixed by retrying; 454
            # ("temporary authentication failure", RFC 4954) can.
            code = error.smtp_code
            message = (
                f"SMTP {code} authenticating as {self.settings.username} at {where}: "
                f"{_server_text(error.smtp_error)}"
            )
            transient = 400 <= code < 500
        elif isinstance(error, smtplib.SMTPConnectError):
            message = (
                f"SMTP {error.smtp_code} from {where} on connect: {_server_text(error.smtp_error)}"
            )
            transient = True
        elif isinstance(error, smtplib.SMTPSenderRefused):
            code = error.smtp_code
            message = f"SMTP {code} for sender {error.sender}: {_server_text(error.smtp_error)}"
            transient = 400 <= code < 500
        elif isinstance(error, smtplib.SMTPResponseException):  # DATA, HELO, STARTTLS
            code = error.smtp_code
            message = f"SMTP {code} for {recipient}: {_server_text(error.smtp_error)}"
            transient = 400 <= code < 500
        elif isinstance(error, smtplib.SMTPServerDisconnected):
            message = f"SMTP server {where} disconnected: {_one_line(str(error))}"
            transient = True
        elif isinstance(error, smtplib.SMTPNotSupportedError):  # no STARTTLS or no AUTH
            message = f"SMTP server {where}: {_one_line(str(error))}"
            transient = False
        elif isinstance(error, smtplib.SMTPException):
            message = f"SMTP error at {where}: {_one_line(str(error))}"
            transient = False
        elif isinstance(error, ssl.SSLCertVerificationError):
            # A wrong certificate or ca_file: retrying sends to the same untrusted server.
            message = f"TLS certificate of {where} not trusted: {_one_line(error.verify_message)}"
            transient = False
        elif isinstance(error, ssl.SSLError) and error.reason in _TLS_MISMATCH:
            # TLS spoken to a plain port (or the reverse): `security` does not fit the port.
            message = (
                f"TLS handshake with {where} failed ({error.reason}): "
                f"is security={self.settings.security!r} right for port {self.settings.port}?"
            )
            transient = False
        elif isinstance(error, OSError):  # refused, reset, timeout, DNS, TLS handshake
            reason = _one_line(str(error)) or type(error).__name__
            message = f"SMTP server {where} unreachable: {reason}"
            transient = True
        else:
            message = f"SMTP send to {recipient} failed: {type(error).__name__}: {error}"
            transient = False
        return SendError(self._redact(message), transient=transient)

    def _redact(self, message: str) -> str:
        password = self.settings.password.get_secret_value() if self.settings.password else ""
        return message.replace(password, "**********") if password else message


def _html_with_links(body: str, links: tuple[str, ...]) -> str:
    """The HTML part, with the links it does not already contain listed at its end."""
    missing = [link for link in links if link not in body]
    if not missing:
        return body
    items = "".join(
        f'<li><a href="{html.escape(link, quote=True)}">{html.escape(link)}</a></li>'
        for link in missing
    )
    block = f"<ul>{items}</ul>"
    at = body.lower().rfind("</body>")
    return body[:at] + block + body[at:] if at >= 0 else body + block
