"""The chat webhook channel: one envelope becomes one JSON post to Slack, Teams or the like.

Why it looks the way it does:

* The payload is `{"text": ...}`, the one shape Slack incoming webhooks, Mattermost,
  Rocket.Chat and Teams' (legacy) connectors all accept: the subject, the text and the
  links on separate lines. Chat posts carry no files, so attachments are not sent; the
  links point at them.
* A webhook URL *is* a credential (whoever knows a Slack hook URL can post to the
  channel), so it never appears in a returned reference, a `SendError`, a repr or a log
  line: all of them show only `scheme://host`. httpx logs each request's full URL at INFO;
  a filter on its logger redacts this channel's URLs there too. Errors are raised `from
  None`, because httpx's own exceptions carry the request and its URL.
* HTTP 429, 408 and 5xx, timeouts and connection errors are transient (the ledger retries
  them); any other 4xx means the hook is gone or the payload is refused, and retrying
  cannot fix that, so it is permanent, quoting the status and the start of the body.
"""

from __future__ import annotations

import logging
import threading

import httpx

from reports.delivery._envelope import Envelope, SendError

_SECRETS: set[str] = set()  # full URLs of every WebhookChannel, redacted in httpx's log
_SECRETS_LOCK = threading.Lock()


class _RedactUrls(logging.Filter):
    """Replaces a webhook's URL in httpx's "HTTP Request: POST <url> ..." records."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(str(a) in _SECRETS for a in record.args):
            record.args = tuple(
                redact_url(str(a)) if str(a) in _SECRETS else a for a in record.args
            )
        return True


_FILTER = _RedactUrls()


def redact_url(url: str) -> str:
    """`scheme://host[:port]` of `url`: what may be shown of a secret URL."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        return "<invalid URL>"
    if not parsed.host:
        return f"{parsed.scheme}://" if parsed.scheme else "<invalid URL>"
    host = f"[{parsed.host}]" if ":" in parsed.host else parsed.host
    port = f":{parsed.port}" if parsed.port is not None else ""
    return f"{parsed.scheme}://{host}{port}"


def _one_line(text: str, limit: int = 200) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


class WebhookChannel:
    """Posts each envelope as one chat message to an incoming-webhook URL."""

    def __init__(self, url: str, name: str = "webhook", timeout_s: float = 10.0) -> None:
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError):
            parsed = None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
            raise SendError(
                f"webhook {name!r}: the URL must be http:// or https:// with a host",
                transient=False,
            )
        self.name = name
        self.timeout_s = timeout_s
        self._url = url
        self._parsed = parsed
        self.display_url = redact_url(url)
        with _SECRETS_LOCK:
            _SECRETS.update({url, str(parsed)})
        httpx_logger = logging.getLogger("httpx")
        if _FILTER not in httpx_logger.filters:
            httpx_logger.addFilter(_FILTER)

    def __repr__(self) -> str:
        return f"WebhookChannel(name={self.name!r}, url={self.display_url!r})"

    @staticmethod
    def payload(envelope: Envelope) -> dict[str, str]:
        """The JSON body: subject, text and links, one per line."""
        parts = [envelope.subject.strip(), envelope.text.strip(), *envelope.links]
        return {"text": "\n".join(part for part in parts if part)}

    def send(self, envelope: Envelope) -> str:
        """Post one envelope; return `scheme://host status`, or raise a classified error."""
        where = f"webhook {self.name!r} at {self.display_url}"
        try:
            with httpx.Client(timeout=self.timeout_s, follow_redirects=False) as client:
                response = client.post(self._url, json=self.payload(envelope))
        except httpx.UnsupportedProtocol:
            raise SendError(f"{where}: unsupported protocol", transient=False) from None
        except (httpx.TransportError, OSError) as error:  # connect, read, timeouts, proxy
            reason = self._scrub(_one_line(str(error))) or type(error).__name__
            raise SendError(f"{where} unreachable: {reason}", transient=True) from None
        status = response.status_code
        if 200 <= status < 300:
            return f"{self.display_url} {status}"
        body = self._scrub(_one_line(response.text)) or response.reason_phrase
        message = f"{where}: HTTP {status}: {body}"
        transient = status in (408, 429) or status >= 500
        raise SendError(message, transient=transient)

    def _scrub(self, text: str) -> str:
        """Remove the URL and its path (servers echo them: "Cannot POST /services/...")."""
        for secret in sorted({self._url, str(self._parsed)}, key=len, reverse=True):
            text = text.replace(secret, self.display_url)
        path = self._parsed.raw_path.decode("ascii", "replace")
        for secret in {path, self._parsed.path}:
            if secret and secret != "/":
                text = text.replace(secret, "/…")
        return text
