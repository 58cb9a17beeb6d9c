"""The output store: a local folder or any fsspec URL, written atomically.

Layout: `<root>/<report>/<param>=<value>/.../<files>`, one folder per parameter
set, so a retried or re-run item overwrites its own files and never duplicates
them. Names derived from parameter values are sanitized and checked to stay
inside the root.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import uuid
from pathlib import Path
from typing import Any

import fsspec

from reports.errors import OutputPathError

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
MANIFEST = "manifest.json"


def safe_component(value: Any) -> str:
    """A file-name-safe rendering of `value`; distinct values stay distinct."""
    text = str(value)
    cleaned = _UNSAFE.sub("_", text).lstrip(".")[:80] or "_"
    if cleaned != text:
        # Sanitizing can merge values ("a/b" and "a_b"): a short hash keeps them apart.
        cleaned += "~" + hashlib.sha256(text.encode()).hexdigest()[:8]
    return cleaned


class OutputStore:
    def __init__(self, url: str) -> None:
        self.url = url
        self.fs, root = fsspec.core.url_to_fs(url)
        self.root = root.rstrip("/") or "/"
        self._local = "file" in (
            self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        )

    def item_dir(self, report: str, params: dict[str, Any]) -> str:
        """The folder (relative to the root) of one report and parameter set."""
        parts = [safe_component(report)] + [
            f"{safe_component(k)}={safe_component(v)}" for k, v in params.items()
        ]
        relative = posixpath.join(*parts)
        self._absolute(relative)  # raises if it would leave the root
        return relative

    @staticmethod
    def file_stem(report: str, params: dict[str, Any]) -> str:
        return "_".join([safe_component(report), *(safe_component(v) for v in params.values())])

    def _absolute(self, relative: str) -> str:
        joined = posixpath.normpath(posixpath.join(self.root, relative))
        if joined != self.root and not joined.startswith(self.root.rstrip("/") + "/"):
            raise OutputPathError(f"output path {relative!r} would leave the output root")
        return joined

    def path(self, relative: str) -> str:
        """Where `relative` lives, as the store's filesystem sees it."""
        return self._absolute(relative)

    def uri(self, relative: str) -> str:
        path = self._absolute(relative)
        return Path(path).as_uri() if self._local else self.fs.unstrip_protocol(path)

    def write_bytes(self, relative: str, data: bytes) -> None:
        """Write via a temporary name and a rename, so readers never see half a file."""
        target = self._absolute(relative)
        self.fs.makedirs(posixpath.dirname(target), exist_ok=True)
        if self.fs.isdir(target):
            raise OutputPathError(f"output path {relative!r} is a folder, not a file")
        temporary = f"{target}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            with self.fs.open(temporary, "wb") as handle:
                handle.write(data)
            if self._local:
                os.replace(temporary, target)  # atomic on POSIX; never moves *into* a folder
            else:
                self.fs.mv(temporary, target)
        except BaseException:
            if self.fs.exists(temporary):
                self.fs.rm(temporary)
            raise

    def read_bytes(self, relative: str) -> bytes:
        with self.fs.open(self._absolute(relative), "rb") as handle:
            return handle.read()

    def exists(self, relative: str) -> bool:
        return self.fs.exists(self._absolute(relative))

    def size(self, relative: str) -> int:
        return int(self.fs.size(self._absolute(relative)))

    def remove(self, relative: str) -> None:
        target = self._absolute(relative)
        if self.fs.exists(target):
            self.fs.rm(target)

    def read_manifest(self, item_dir: str) -> dict[str, Any] | None:
        relative = posixpath.join(item_dir, MANIFEST)
        try:
            return json.loads(self.read_bytes(relative))
        except FileNotFoundError:
            return None
        except (ValueError, UnicodeDecodeError):
            return None  # a damaged manifest means: render again

    def write_manifest(self, item_dir: str, manifest: dict[str, Any]) -> None:
        data = json.dumps(manifest, indent=2, sort_keys=True, default=str).encode()
        self.write_bytes(posixpath.join(item_dir, MANIFEST), data)

    def manifests(self, report: str | None = None) -> list[dict[str, Any]]:
        """Every manifest under the root (or one report's), for browsing outputs."""
        base = self._absolute(safe_component(report)) if report else self.root
        found = self.fs.glob(posixpath.join(base, "**", MANIFEST))
        result = []
        for path in sorted(found):
            with self.fs.open(path, "rb") as handle:
                try:
                    result.append(json.loads(handle.read()))
                except ValueError:
                    continue
        return result
