"""A batch's items as its table artifact records them."""

from __future__ import annotations

import json
import uuid
from typing import Any

from prefect_api import Api
from reports.contracts import BATCH_ITEMS, is_artifact_of_kind, item_row_params


def failed_items(api: Api, batch_run_id: str) -> list[dict[str, Any]]:
    """The parameters of the items that failed in a batch run.

    Read from the run's latest `<report>-batch-items` table artifact (its `params`
    column; tables written before it existed give their keys back as text); raises
    `ApiUnavailable` when the API fails.
    """
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterType,
    )
    from prefect.client.schemas.sorting import ArtifactSort

    with api.guard("the batch's item table"):
        artifacts = api.client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[uuid.UUID(batch_run_id)]),
                type=ArtifactFilterType(any_=["table"]),
            ),
            sort=ArtifactSort.CREATED_DESC,
            limit=20,
        )
    table = next((a for a in artifacts if is_artifact_of_kind(a.key, BATCH_ITEMS)), None)
    if table is None:
        return []
    rows = json.loads(table.data) if isinstance(table.data, str) else table.data
    return [item_row_params(row) for row in rows or [] if row.get("status") == "failed"]
