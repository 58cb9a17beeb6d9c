"""The output store: a local folder or any fsspec URL, written atomically.

Layout: `<root>/<report>/<param>=<value>/.../<files>`, one folder per parameter
set, so a retried or re-run item overwrites its own files and never duplicates
them. Names derived from parameter values are sanitized and checked to stay
inside the root.

Object stores (S3 and its kin) are not file systems: a key is written whole by one
PUT, there is no rename and there are no folders. Each method below says what it
costs there, in requests, because on S3 requests are the price of an item.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import posixpath
import re
import threading
import uuid
from pathlib import Path
from typing import Any

import fsspec

from reports.errors import OutputPathError

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
MANIFEST = "manifest.json"
# fsspec protocols of object stores: a PUT replaces an object whole (readers see the old
# or the new bytes, never a part), and "rename" is a copy and a delete.
OBJECT_STORES = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss"})


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
        protocol = fsspec.core.split_protocol(url)[0]
        # No listings cache on object stores: fsspec shares one filesystem object per
        # process, and s3fs answers `info`/`exists` from listings it cached (a `glob`
        # fills them), so a file another worker wrote or removed since would read as
        # missing or present.
        options = {"use_listings_cache": False} if protocol in OBJECT_STORES else {}
        self.fs, root = fsspec.core.url_to_fs(url, **options)
        self.root = root.rstrip("/") or "/"
        protocols = set(
            self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        )
        self._local = "file" in protocols
        self._object_store = bool(protocols & OBJECT_STORES)
        # s3fs first HEADs a file to decide on parallel ranged GETs, which only pays for
        # files of tens of MB: outputs are smaller, so a read is one GET.
        self._read_options = {"max_concurrency": 1} if "s3" in protocols else {}
        # The last `exists` answer on an object store (thread, path, info), for the
        # `size` call that follows it on the same thread (render.is_current asks both of
        # every file): one HEAD request, not two. A plain tuple: the store pickles.
        self._seen: tuple[int, str, dict[str, Any]] | None = None

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
        self._seen = None  # any other call in between makes it stale
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
        """Write so that readers never see half a file.

        A local folder (or another file system): a temporary name, then a rename.
        An object store: one PUT. S3 has no rename (s3fs's `mv` is a copy and a
        delete, two more requests, and a crash between them leaves a `*.tmp` object
        behind), while a PUT is atomic per object already. Nor has it folders: none
        to create, none a file could be moved into (store names never clash with
        folder names: only folder names hold a '=').
        """
        target = self._absolute(relative)
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"output data must be bytes, not {type(data).__name__}")
        if self._object_store:
            self.fs.pipe_file(target, bytes(data))
            return
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
        """The file's bytes; `FileNotFoundError` when it is missing (S3: one GET)."""
        return self.fs.cat_file(self._absolute(relative), **self._read_options)

    def exists(self, relative: str) -> bool:
        """Whether the file (or folder) is there (S3: one HEAD; two when it is not)."""
        path = self._absolute(relative)
        if not self._object_store:
            return self.fs.exists(path)
        try:
            info = self.fs.info(path)
        except FileNotFoundError:
            return False
        self._seen = (threading.get_ident(), path, info)
        return True

    def size(self, relative: str) -> int:
        """The file's size in bytes (S3: one HEAD, none right after `exists`)."""
        seen = self._seen
        path = self._absolute(relative)
        if seen and seen[:2] == (threading.get_ident(), path) and seen[2].get("size") is not None:
            return int(seen[2]["size"])
        return int(self.fs.size(path))

    def remove(self, relative: str) -> None:
        """Remove the file; nothing happens when it is gone (S3: one DELETE)."""
        target = self._absolute(relative)
        if self._object_store:
            # Deleting a missing key succeeds on S3 and fails on some other stores.
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm_file(target)
            return
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
        found = sorted(self.fs.glob(posixpath.join(base, "**", MANIFEST)))
        if not found:
            return []
        # One call for all: on S3 the GETs run concurrently (one listing, then one GET
        # per manifest); a manifest that vanished since the listing is left out.
        contents = self.fs.cat(found, on_error="omit", **self._read_options)
        result = []
        for path in found:
            try:
                result.append(json.loads(contents[path]))
            except (KeyError, ValueError):
                continue
        return result
