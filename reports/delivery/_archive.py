"""The archive channel: one envelope's files copied to `<url>/<subscription>/<recipient>/`.

Why it looks the way it does:

* It reuses `OutputStore`, so any fsspec URL works (a folder, s3://, sftp://) and every
  file is written atomically (a temporary name, then a rename): a reader of the archive
  never sees half a PDF. A resend overwrites the same files instead of adding copies.
* Subscription and recipient names become path components through `safe_component`,
  so a recipient such as "../../etc" cannot leave the archive root.
* A `<delivery_id>.json` receipt, written after the files, records what was archived
  (names, sizes, sha256), so its presence means the copy is complete.
* Errors are classified for the ledger: a refused permission or a path that cannot
  exist is permanent; any other `OSError` (a network share or bucket briefly away, a
  full disk) is transient.
"""

from __future__ import annotations

import errno
import hashlib
import json
import posixpath
from datetime import UTC, datetime

from reports.delivery._envelope import Envelope, SendError
from reports.errors import OutputPathError
from reports.store import OutputStore, safe_component

# Permission and path errors: the same write fails the same way next time. (A missing
# bucket or folder above the root is FileNotFoundError: the URL is wrong.)
_PERMANENT_ERRNOS = {
    errno.EACCES,
    errno.EPERM,
    errno.EROFS,
    errno.ENOENT,
    errno.ENOTDIR,
    errno.EISDIR,
    errno.EEXIST,
    errno.ENAMETOOLONG,
    errno.EINVAL,
}
_PERMANENT_OS_ERRORS = (
    PermissionError,
    FileNotFoundError,
    NotADirectoryError,
    IsADirectoryError,
    FileExistsError,
)


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


class ArchiveChannel:
    """Copies each envelope's attachments, plus a receipt, into an archive folder."""

    name = "archive"

    def __init__(self, url: str) -> None:
        self._url = url  # private: an sftp:// URL may carry a password
        self._store: OutputStore | None = None  # opened on first send: sftp connects

    def __repr__(self) -> str:
        return f"ArchiveChannel({self._store.uri('') if self._store else '…'})"

    def folder(self, envelope: Envelope) -> str:
        """The envelope's folder, relative to the archive root."""
        return posixpath.join(
            safe_component(envelope.subscription), safe_component(envelope.recipient)
        )

    def send(self, envelope: Envelope) -> str:
        """Archive one envelope; return the URI of its first file (else of its receipt)."""
        try:
            return self._send(envelope)
        except OutputPathError as error:
            raise SendError(f"archive: {error}", transient=False) from None
        except OSError as error:
            if isinstance(error, _PERMANENT_OS_ERRORS) or error.errno in _PERMANENT_ERRNOS:
                raise SendError(f"archive: {_one_line(str(error))}", transient=False) from error
            reason = _one_line(str(error)) or type(error).__name__
            raise SendError(f"archive unavailable: {reason}", transient=True) from error
        except (ImportError, ValueError) as error:  # unknown protocol, missing fsspec driver
            raise SendError(
                f"archive: cannot open the archive URL: {_one_line(str(error))}",
                transient=False,
            ) from None

    def _send(self, envelope: Envelope) -> str:
        if self._store is None:
            self._store = OutputStore(self._url)
        store = self._store
        folder = self.folder(envelope)
        files = []
        for attachment in envelope.attachments:
            relative = posixpath.join(folder, safe_component(attachment.filename))
            store.write_bytes(relative, attachment.data)
            files.append(
                {
                    "filename": attachment.filename,
                    "uri": store.uri(relative),
                    "mime_type": attachment.mime_type,
                    "size": len(attachment.data),
                    "sha256": hashlib.sha256(attachment.data).hexdigest(),
                }
            )
        receipt = {
            "delivery_id": envelope.delivery_id,
            "message_id": envelope.message_id,
            "subscription": envelope.subscription,
            "recipient": envelope.recipient,
            "recipient_name": envelope.recipient_name,
            "subject": envelope.subject,
            "links": list(envelope.links),
            "files": files,
            "archived_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        receipt_path = posixpath.join(folder, safe_component(envelope.delivery_id) + ".json")
        store.write_bytes(receipt_path, json.dumps(receipt, indent=2).encode())
        return files[0]["uri"] if files else store.uri(receipt_path)
