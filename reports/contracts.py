"""Names and shapes shared across layers: what one layer writes and another reads.

The flows write flow runs, artifacts and outcomes; the dashboard, the CLI and the
deployments read them back. Each such value is defined here once, and
tests/contracts/ ties every producer to its consumer. Standard library only, so any
layer can import it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args
from urllib.parse import quote, unquote

# ---- flows and deployments ---------------------------------------------------------------

REPORT_FLOW = "report"  # one report, one parameter set
BATCH_FLOW = "batch"  # one report fanned out over many parameter sets
CHUNK_FLOW = "render-chunk"  # a slice of a batch, possibly on another worker
DELIVER_FLOW = "deliver"  # one subscription: render what is missing, then send
CHUNK_DEPLOYMENT = f"{CHUNK_FLOW}/render-chunk"  # as prefect.yaml names it
REPORT_FLOWS = (REPORT_FLOW, BATCH_FLOW)  # what a person starts; chunks are machinery


def deployment_name(flow: str, name: str) -> str:
    """Prefect's full name of a deployment: `report/carrier-monthly`."""
    return f"{flow}/{name}"


# ---- artifacts ---------------------------------------------------------------------------

PROGRESS = "progress"  # a report run's stages, 0 → 100
SUMMARY = "summary"  # a report run's outputs, as markdown
BATCH_PROGRESS = "batch-progress"  # the batch's one progress bar
BATCH_SUMMARY = "batch-summary"  # the batch's failures first, as markdown
BATCH_ITEMS = "batch-items"  # the batch's table: one row per item
DELIVERY_PROGRESS = "delivery-progress"  # "N of M sent, K failed, H held"
DELIVERY_SUMMARY = "delivery-summary"  # who got what, failures and holds first


def artifact_key(report: str, kind: str) -> str:
    """`carrier-monthly-batch-items`: Prefect allows lowercase letters, digits and dashes."""
    text = re.sub(r"[^a-z0-9-]", "-", f"{report}-{kind}".lower())
    return re.sub(r"-+", "-", text).strip("-")


def is_artifact_of_kind(key: str | None, kind: str) -> bool:
    return bool(key) and key.endswith(f"-{kind}")


# ---- events: what the flows and the exporter announce, and automations listen for --------

# A batch whose ETA has passed its deadline, announced once per batch before the deadline.
# Resource: `reportrunner.batch.<batch run id>`; payload: report, batch, deadline (ISO),
# eta (ISO), items_left, per_minute (throughput), link (the batch's dashboard page).
DEADLINE_EVENT = "reportrunner.batch.deadline-at-risk"
# A report failing far more than usual in the last hour, announced once per report and
# hour. Resource: `reportrunner.report.<report>`; payload: report, failed, typical, since, link.
FAILURE_SPIKE_EVENT = "reportrunner.report.failure-spike"


def batch_resource(batch_id: str) -> str:
    return f"reportrunner.batch.{batch_id}"


def report_resource(report: str) -> str:
    return f"reportrunner.report.{report}"


# ---- parameter values --------------------------------------------------------------------

OutputFormat = Literal["pdf", "html", "csv"]
OUTPUT_FORMATS: tuple[str, ...] = get_args(OutputFormat)
MONTH_PATTERN = r"\d{4}-(?:0[1-9]|1[0-2])"  # YYYY-MM; anchor with `anchored`
DATE_PATTERN = r"\d{4}-\d{2}-\d{2}"
REPORT_NAME_PATTERN = r"[a-z][a-z0-9-]*"


def anchored(pattern: str) -> str:
    """The pattern as a whole-value JSON Schema / HTML pattern: `^(?:…)$`."""
    return f"^(?:{pattern})$"


def unanchored(pattern: str) -> str:
    """`anchored`'s inverse, for messages: `^(?:[A-Z]{3})$` → `[A-Z]{3}`."""
    match = re.fullmatch(r"\^\(\?:(.*)\)\$", pattern)
    return match.group(1) if match else pattern


# Bounds of a run's tuning parameters, enforced by the flows' signatures (and so by
# each deployment's parameter schema) and by the settings. A run may ask for less
# parallelism than its worker allows, never more (`REPORTRUNNER_MAX_PARALLEL`).
MAX_PARALLEL = 64
MAX_CHUNK_SIZE = 5_000
MAX_ITEMS_PER_TASK = 500


# ---- items -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemKey:
    """One item's business key: `carrier=AA month=2013-07`.

    The text is what people read and search for; it round-trips losslessly (values
    with spaces, `=` or `%` are percent-encoded), and `parse` gives the values back
    as text for the report to validate again.
    """

    params: tuple[tuple[str, Any], ...]

    @classmethod
    def of(cls, params: Mapping[str, Any]) -> ItemKey:
        return cls(tuple(params.items()))

    @property
    def text(self) -> str:
        return " ".join(f"{_encode(str(k))}={_encode(_text(v))}" for k, v in self.params)

    @property
    def label(self) -> str:
        """For people only: the values as they are, spaces and all (not parseable)."""
        return " ".join(f"{k}={_text(v)}" for k, v in self.params)

    def __str__(self) -> str:
        return self.text

    @staticmethod
    def parse(text: str) -> dict[str, str]:
        """`carrier=AA month=2013-07` → {"carrier": "AA", "month": "2013-07"}."""
        params: dict[str, str] = {}
        for part in text.split():
            name, sep, value = part.partition("=")
            if not sep or not name:
                raise ValueError(f"not an item key: {text!r} (expected name=value …)")
            params[unquote(name)] = unquote(value)
        return params


def item_key(params: Mapping[str, Any]) -> str:
    """The business key of a parameter set, as text."""
    return ItemKey.of(params).text


def item_row_params(row: Mapping[str, Any]) -> dict[str, Any]:
    """An item's parameters from a row of the batch-items table artifact.

    Its `params` column holds them as JSON; tables written before that column existed
    give them back from the key, as text.
    """
    if row.get("params"):
        return json.loads(row["params"])
    return ItemKey.parse(str(row["item"]))


def report_run_name(parameters: Mapping[str, Any]) -> str:
    """A report run's business name, from its flow parameters: `carrier-monthly carrier=AA
    month=2013-07`. The flow names its runs so, and the dashboard names them so at creation."""
    return f"{parameters['report']} {item_key(parameters.get('parameters') or {})}".strip()


def batch_run_name(parameters: Mapping[str, Any]) -> str:
    """A batch run's business name: `carrier-monthly batch over month carrier=AA`."""
    over = parameters.get("over") or {}
    fixed = parameters.get("parameters") or {}
    dims = " × ".join(over) if over else f"{len(parameters.get('items') or [])} items"
    return f"{parameters['report']} batch over {dims} {item_key(fixed)}".strip()


def run_name(flow: str | None, parameters: Mapping[str, Any] | None) -> str | None:
    """The business name of a `report` or `batch` run, or None for other flows (and runs
    without a report), whose own run name stands."""
    report = (parameters or {}).get("report")
    if not isinstance(report, str) or not report:
        return None
    try:
        if flow == REPORT_FLOW:
            return report_run_name(parameters or {})
        if flow == BATCH_FLOW:
            return batch_run_name(parameters or {})
    except (AttributeError, TypeError):  # parameters of an unexpected shape: no name
        return None
    return None


def _text(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _encode(text: str) -> str:
    # Only what would break splitting on spaces and `=`: the rest stays readable.
    return _UNSAFE_IN_KEY.sub(lambda match: quote(match.group(), safe=""), text)


_UNSAFE_IN_KEY = re.compile(r"[%=\s]")

OutcomeStatus = Literal["rendered", "skipped", "failed"]

# An item's status as the item index keeps it and every page shows it: always an icon
# and a word, never a colour alone. "flagged": rendered, but its quality gate warned.
ItemStatus = Literal["rendered", "unchanged", "flagged", "failed", "running", "pending"]
ITEM_STATUSES: tuple[str, ...] = get_args(ItemStatus)
ITEM_STATUS_ICONS = {
    "rendered": "✅",
    "unchanged": "♻️",
    "flagged": "⚠️",
    "failed": "❌",
    "running": "⏳",
    "pending": "🕒",
}


def item_status(outcome_status: str, quality: str | None = None) -> ItemStatus:
    """The item status an outcome leaves: skipped reads "unchanged", a warned render "flagged"."""
    if outcome_status == "skipped":
        return "unchanged"
    if outcome_status == "rendered" and quality not in (None, "ok"):
        return "flagged"
    return "failed" if outcome_status == "failed" else "rendered"


def status_label(status: str) -> str:
    """'❌ failed': icon and word together."""
    return f"{ITEM_STATUS_ICONS.get(status, '•')} {status}"


@dataclass
class Outcome:
    """What happened to one item of a batch (or one report run)."""

    key: str
    params: dict[str, Any]
    status: OutcomeStatus
    error: str | None = None
    attempts: int = 1
    duration_s: float | None = None
    pages: int | None = None
    quality: str | None = None  # ok, warning, failed
    item_dir: str | None = None
    files: list[str] = field(default_factory=list)
    # From the manifest of the outputs (rendered, or found current): what the item index
    # keeps as the item's history. `rendered_at` and `fingerprint` identify one render.
    fingerprint: str | None = None
    data_hash: str | None = None
    rendered_at: str | None = None
    rows: dict[str, int] = field(default_factory=dict)
    kpis: dict[str, str] = field(default_factory=dict)

    @classmethod
    def failed(cls, params: Mapping[str, Any], error: str, attempts: int = 1) -> Outcome:
        return cls(item_key(params), dict(params), "failed", error=error, attempts=attempts)

    @classmethod
    def skipped(cls, params: Mapping[str, Any]) -> Outcome:
        return cls(item_key(params), dict(params), "skipped")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Outcome:
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cls(**known)


# ---- batch progress ----------------------------------------------------------------------

_PROGRESS_DATA = re.compile(r"<!-- reportrunner-progress (\{.*?\}) -->", re.DOTALL)


@dataclass(frozen=True)
class ProgressSnapshot:
    """A batch's progress as the flow writes it and the dashboard reads it.

    The progress artifact's description carries it twice: as the sentence people read
    ("12 of 192 done (3 unchanged), 1 failed, ETA 4 min 10 s") and as JSON in an HTML
    comment that Markdown hides, which is what programs read.
    """

    total: int
    rendered: int = 0
    skipped: int = 0
    failed: int = 0
    elapsed_s: float = 0.0
    eta_s: float | None = None  # None: not enough seen yet to tell
    eta_low_s: float | None = None  # the range the ETA may fall in
    eta_high_s: float | None = None

    @property
    def done(self) -> int:
        return self.rendered + self.skipped + self.failed

    @property
    def finished(self) -> bool:
        return self.done >= self.total

    @property
    def percent(self) -> float:
        return 100.0 if self.total == 0 else round(100.0 * self.done / self.total, 1)

    def sentence(self) -> str:
        text = f"{self.done} of {self.total} done"
        if self.skipped:
            text += f" ({self.skipped} unchanged)"
        text += f", {self.failed} failed"
        if self.finished:
            return text + f", took {format_duration(self.elapsed_s)}"
        return text + f", ETA {self.eta_text()}"

    def eta_text(self) -> str:
        """'4–6 min', '40 s', or 'pending' while there is nothing to estimate from."""
        if self.eta_s is None:
            return "pending"
        if self.eta_low_s is None or self.eta_high_s is None:
            return format_duration(self.eta_s)
        return format_duration_range(self.eta_low_s, self.eta_high_s)

    def description(self) -> str:
        data = json.dumps(asdict(self), separators=(",", ":"))
        return f"{self.sentence()}\n\n<!-- reportrunner-progress {data} -->"

    @classmethod
    def from_description(cls, description: str | None) -> ProgressSnapshot | None:
        """The snapshot in a progress artifact's description, or None if it has none."""
        match = _PROGRESS_DATA.search(description or "")
        if not match:
            return None
        try:
            data = json.loads(match.group(1))
            return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})
        except (ValueError, TypeError):
            return None


def sentence_of(description: str | None) -> str:
    """The human part of a progress description (without the machine-readable comment)."""
    return _PROGRESS_DATA.sub("", description or "").strip()


# ---- words -------------------------------------------------------------------------------


def format_duration_range(low: float, high: float) -> str:
    """'20–40 s', '4–6 min', '1 h 10 min – 1 h 40 min': a range at a precision it can hold."""
    low, high = max(0.0, min(low, high)), max(0.0, low, high)
    if high < 60:
        lo, hi = math.floor(low), math.ceil(high)
        return f"{hi} s" if lo == hi else f"{lo}–{hi} s"
    if high < 3600:
        lo, hi = math.floor(low / 60), math.ceil(high / 60)
        if lo == 0:
            return f"under {hi} min"
        return f"{hi} min" if lo == hi else f"{lo}–{hi} min"
    return f"{format_duration(low)} – {format_duration(high)}"


def format_duration(seconds: float | None) -> str:
    """'850 ms', '42 s', '3 min 05 s', '2 h 07 min', or '–' when unknown."""
    if seconds is None:
        return "–"
    seconds = max(0.0, seconds)
    if seconds < 1:
        return f"{round(seconds * 1000)} ms"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
