"""What a channel sends, and how a send fails: the contract between delivery and channels.

The delivery engine decides *who gets what* and keeps the ledger; a channel only turns
one `Envelope` into one message (an email, a chat post, an archived file) and says how
it went: the reference of what it sent, or a `SendError` that is transient (retry
with backoff: connection refused, SMTP 4xx, HTTP 5xx/429) or permanent (fail at once
with the server's own words: SMTP 5xx, a bad address, HTTP 4xx).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from reports.errors import ReportError


@dataclass(frozen=True)
class Attachment:
    filename: str
    data: bytes
    mime_type: str = "application/pdf"


@dataclass(frozen=True)
class Envelope:
    """One message to one recipient on one channel: one item, or a digest of several."""

    delivery_id: str  # deterministic: the same send always has the same id (Message-ID)
    subscription: str
    recipient: str  # an email address, a webhook's name, an archive folder key
    recipient_name: str | None
    subject: str
    text: str  # plain-text body
    html: str | None = None  # HTML body (email)
    attachments: tuple[Attachment, ...] = ()
    links: tuple[str, ...] = ()  # where each output can be opened (dashboard, store)

    @property
    def message_id(self) -> str:
        """The RFC 5322 Message-ID: a resend after a crash carries the same one."""
        return f"<{self.delivery_id}@reportrunner>"


class SendError(ReportError):
    """A send that did not happen; `transient` says whether trying again may help."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient

    def __reduce__(self):  # survives the trip between processes, `transient` included
        return (_send_error, (str(self), self.transient))


def _send_error(message: str, transient: bool) -> SendError:
    return SendError(message, transient=transient)


class Channel(Protocol):
    """Sends one envelope; returns a reference to what it sent (a Message-ID, a path)."""

    name: str

    def send(self, envelope: Envelope) -> str: ...


@dataclass(frozen=True)
class ChannelSpec:
    """A subscription's channel as declared: its kind and its options."""

    kind: str  # email, webhook, archive
    options: dict = field(default_factory=dict)
