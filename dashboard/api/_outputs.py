"""Produced reports, read from the output store's manifests (not from the Prefect API).

A report's outputs live in one folder per parameter set with a `manifest.json`
(`reports.store`); the manifest is written last, so a folder without one is not a
finished output and is not listed. Readers get plain frozen values, fit for
`st.cache_data`; a damaged or foreign manifest is skipped, never raised.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from reports.contracts import ItemKey, item_key
from reports.definitions import default_catalog
from reports.errors import ReportError
from reports.store import OutputStore


@dataclass(frozen=True)
class OutputFile:
    name: str
    path: str  # relative to the output root
    bytes: int
    sha256: str

    @property
    def kind(self) -> str:
        """'pdf', 'html', 'csv' (by extension)."""
        return posixpath.splitext(self.name)[1].lstrip(".").lower()


@dataclass(frozen=True)
class Output:
    """One produced report: one report and parameter set, as its manifest describes it."""

    report: str
    title: str
    parameters: dict[str, str]
    pages: int | None
    quality: str  # ok, warning, …
    issues: tuple[str, ...]
    created_at: datetime | None
    item_dir: str
    files: tuple[OutputFile, ...]

    @property
    def key(self) -> str:
        """The business key the batch and the runs page use: 'carrier=AA month=2013-07'."""
        return item_key(self.parameters)

    @property
    def label(self) -> str:
        """The key for people: values as they are."""
        return ItemKey.of(self.parameters).label

    @property
    def pdf(self) -> OutputFile | None:
        return self.file("pdf")

    @property
    def html(self) -> OutputFile | None:
        return self.file("html")

    @property
    def csvs(self) -> tuple[OutputFile, ...]:
        return tuple(f for f in self.files if f.kind == "csv")

    @property
    def total_bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    def file(self, kind: str) -> OutputFile | None:
        return next((f for f in self.files if f.kind == kind), None)


class OutputLookupError(Exception):
    """The outputs of a run cannot be located; the message is one line, safe to show."""


def list_outputs(store_url: str, report: str | None = None) -> list[Output]:
    """Every finished output in the store (or of one report), newest first.

    Costs one directory walk and one small read per output: cache the answer.
    """
    try:
        manifests = OutputStore(store_url).manifests(report)
    except OSError as exc:  # the store is unreachable, or a folder vanished mid-walk
        raise OutputLookupError(f"output store cannot be read: {exc}") from None
    found = [o for o in map(from_manifest, manifests) if o]
    if report:
        found = [o for o in found if o.report == report]
    return sorted(found, key=lambda o: o.created_at or _EPOCH, reverse=True)


def find_output(store_url: str, report: str, parameters: dict[str, Any]) -> Output | None:
    """The output of one report and parameter set, as a `report` run would have published it.

    The run's raw parameters are typed and completed with defaults as the flow does,
    so the folder is the one the flow wrote; raises `OutputLookupError` when they
    cannot be (an unknown report, a parameter the report no longer has).
    """
    try:
        definition = default_catalog().get(report)
        # No `choices_from` look-ups: locating a folder needs no data-source query.
        params = definition.spec.validate_params(parameters)
        store = OutputStore(store_url)
        manifest = store.read_manifest(store.item_dir(report, params))
    except (ReportError, OSError) as exc:
        raise OutputLookupError(f"outputs of {report} cannot be located: {exc}") from None
    return from_manifest(manifest) if manifest else None


def read_output_file(store_url: str, file: OutputFile) -> bytes:
    """The bytes of one output file; `FileNotFoundError` when it has gone since."""
    return OutputStore(store_url).read_bytes(file.path)


def from_manifest(manifest: dict[str, Any]) -> Output | None:
    """An `Output` from a manifest, or None when it lacks what a listing needs."""
    try:
        quality = manifest.get("quality") or {}
        return Output(
            report=str(manifest["report"]),
            title=str(manifest.get("title") or manifest["report"]),
            parameters={str(k): str(v) for k, v in (manifest.get("parameters") or {}).items()},
            pages=int(manifest["pages"]) if manifest.get("pages") is not None else None,
            quality=str(quality.get("status") or "unknown"),
            issues=tuple(str(i) for i in quality.get("issues") or ()),
            created_at=_parse_time(manifest.get("created_at")),
            item_dir=str(manifest["item_dir"]),
            files=tuple(
                OutputFile(
                    name=str(f["name"]),
                    path=str(f["path"]),
                    bytes=int(f["bytes"]),
                    sha256=str(f["sha256"]),
                )
                for f in manifest.get("files") or ()
            ),
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


_EPOCH = datetime.min.replace(tzinfo=UTC)


def _parse_time(value: Any) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
