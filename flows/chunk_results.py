"""Where chunk flow runs leave their outcomes for the batch that started them.

Chunks on other workers cannot hand Python objects back, so each writes its
outcomes as JSON into the shared output store, and the batch merges them.
"""

from __future__ import annotations

import json
import posixpath

from reports import OutputStore
from reports.contracts import Outcome

_FOLDER = "_batches"


def _path(batch_id: str, index: int) -> str:
    return posixpath.join(_FOLDER, batch_id, f"chunk-{index:04d}.json")


def write_outcomes(store: OutputStore, batch_id: str, index: int, outcomes: list[Outcome]) -> None:
    data = [outcome.as_dict() for outcome in outcomes]
    store.write_bytes(_path(batch_id, index), json.dumps(data, default=str).encode())


def read_outcomes(store: OutputStore, batch_id: str, index: int) -> list[Outcome] | None:
    try:
        data = json.loads(store.read_bytes(_path(batch_id, index)))
    except FileNotFoundError:
        return None
    return [Outcome.from_dict(entry) for entry in data]
