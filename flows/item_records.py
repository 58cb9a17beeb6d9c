"""Keeping the item index, and Prefect's event feed, up to date as items finish.

The item index (`reports.index`) is the record the dashboard searches; Prefect
events are the feed: the Prefect UI shows `reportrunner.item.*` events, automations
can trigger on them, and the server trims them after its retention period.

The index is a convenience beside the outputs, never a reason to fail a render: if
its database is down, items still render (a warning says so once), and the next run
that finds them current records them.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from prefect.events import emit_event

from flows.progress import ProgressTracker
from reports.contracts import Outcome, item_key, item_status
from reports.definitions import default_catalog
from reports.index import ItemIndex, open_index

_logger = logging.getLogger(__name__)
# One line per finished item, for log shippers (JSON with REPORTRUNNER_LOG_FORMAT=json).
_items_log = logging.getLogger("reportrunner.items")

ITEM_EVENT = "reportrunner.item.{status}"  # rendered, flagged, failed (unchanged: no event)
ITEM_RESOURCE = "reportrunner.item.{report}.{key}"

# What keeping the index and the feed costs this process (the batch logs it; see
# bench/batch_throughput.py): writes and their seconds, events and their seconds.
_costs = {"index_writes": 0, "index_s": 0.0, "events": 0, "events_s": 0.0}
_costs_lock = threading.Lock()


def costs() -> dict[str, float]:
    """Index writes and events of this process so far, with the seconds they took."""
    with _costs_lock:
        return dict(_costs)


def _count(counter: str, seconds_key: str, seconds: float) -> None:
    with _costs_lock:
        _costs[counter] += 1
        _costs[seconds_key] += seconds


def batch_dimensions(
    over: Mapping[str, Any] | None, items: Sequence[Mapping[str, Any]]
) -> list[str]:
    """The parameters a batch varies: its `over` names, or those that differ between items."""
    if over:
        return list(over)
    names = list(items[0]) if items else []
    varying = [name for name in names if len({str(i.get(name)) for i in items}) > 1]
    return varying or names[:1]


class ItemRecorder:
    """Writes one report's finished items to the index as they finish, for one run."""

    def __init__(
        self,
        report: str,
        *,
        run_id: str | None,
        batch_id: str | None = None,
        progress: ProgressTracker | None = None,
        logger: logging.Logger | logging.LoggerAdapter | None = None,
        index: ItemIndex | None = None,
    ) -> None:
        self.report = report
        self.run_id = run_id
        self.batch_id = batch_id
        self.progress = progress
        self._logger = logger or _logger
        self._index = index
        self._in_order = self._spec_order(report)
        self._warned = threading.Event()

    @staticmethod
    def _spec_order(report: str):
        try:
            return default_catalog().get(report).in_spec_order
        except Exception:  # an unknown report fails elsewhere, with its own message
            return dict

    def canonical(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Parameters in the spec's order: the same item has one key from a batch or a form."""
        return self._in_order(params)

    def _rekeyed(self, outcome: Outcome) -> Outcome:
        params = self.canonical(outcome.params)
        return dataclasses.replace(outcome, key=item_key(params), params=params)

    def _write(self, what: str, write) -> None:
        started = time.perf_counter()
        try:
            write(self._index or open_index())
            _count("index_writes", "index_s", time.perf_counter() - started)
        except Exception as error:  # the outputs are the truth; the index catches up later
            if not self._warned.is_set():
                self._warned.set()
                self._logger.warning(
                    "item index not updated (%s): %s; items still render, and the next "
                    "run records them",
                    what,
                    error,
                )

    # ---- a batch ---------------------------------------------------------------------

    def start_batch(self, name: str, dimensions: Sequence[str], items: Iterable[Mapping]) -> None:
        listed = [self.canonical(item) for item in items]
        self._write(
            "batch start",
            lambda index: index.start_batch(self.batch_id, self.report, name, dimensions, listed),
        )

    def finish_batch(self, state: str, summary: str) -> None:
        self._write("batch end", lambda index: index.finish_batch(self.batch_id, state, summary))

    # ---- items -----------------------------------------------------------------------

    def started(self, items: Iterable[Mapping[str, Any]]) -> None:
        """These items are rendering now."""
        listed = [self.canonical(item) for item in items]
        self._write(
            "running",
            lambda index: index.mark(
                self.report, listed, "running", run_id=self.run_id, batch_id=self.batch_id
            ),
        )

    def finished(self, outcomes: Sequence[Outcome]) -> None:
        """Record items that are done (counting them in the progress too), then announce them."""
        if self.progress is not None:
            for outcome in outcomes:
                self.progress.record(outcome.status)
        keyed = [self._rekeyed(outcome) for outcome in outcomes]
        self._write(
            "items",
            lambda index: index.record(
                self.report, keyed, run_id=self.run_id, batch_id=self.batch_id
            ),
        )
        for outcome in keyed:
            self._log(outcome)
            self._announce(outcome)

    def _log(self, outcome: Outcome) -> None:
        status = item_status(outcome.status, outcome.quality)
        _items_log.info(
            "%s %s: %s%s",
            self.report,
            outcome.key,
            status,
            f" ({outcome.error})" if outcome.error else "",
            extra={
                "report": self.report,
                "item": outcome.key,
                "status": status,
                "stage": "render",
                "duration_s": outcome.duration_s,
                "run_id": self.run_id,
                "batch_id": self.batch_id,
            },
        )

    def _announce(self, outcome: Outcome) -> None:
        status = item_status(outcome.status, outcome.quality)
        if status == "unchanged":
            return  # nothing happened to it: the feed stays about what did
        resource = {
            "prefect.resource.id": ITEM_RESOURCE.format(report=self.report, key=outcome.key),
            "prefect.resource.name": f"{self.report} {outcome.key}",
            "reportrunner.report": self.report,
            "reportrunner.item-key": outcome.key,
            "reportrunner.status": status,
            **{f"reportrunner.param.{k}": str(v)[:200] for k, v in outcome.params.items()},
        }
        related = []
        if self.run_id:
            related.append(
                {
                    "prefect.resource.id": f"prefect.flow-run.{self.run_id}",
                    "prefect.resource.role": "flow-run",
                }
            )
        payload = {"pages": outcome.pages, "duration_s": outcome.duration_s}
        if outcome.error:
            payload["error"] = outcome.error[:500]
        started = time.perf_counter()
        try:
            emit_event(
                ITEM_EVENT.format(status=status),
                resource=resource,
                related=related,
                payload=payload,
            )
            _count("events", "events_s", time.perf_counter() - started)
        except Exception as error:  # a feed: never a reason to fail an item
            self._logger.debug("item event not emitted: %s", error)
