"""The flows' run parameters as bounded types.

Prefect builds each deployment's enforced parameter schema from these annotations
(so the API refuses `formats: ["exe"]` or `max_parallel: -1` with HTTP 409 before a run
exists) and validates them again when a run starts without a deployment.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from flows.deadline import DEADLINE_PATTERN
from reports.contracts import (
    MAX_CHUNK_SIZE,
    MAX_ITEMS_PER_TASK,
    MAX_PARALLEL,
    OUTPUT_FORMATS,
    REPORT_NAME_PATTERN,
    OutputFormat,
)

ReportName = Annotated[str, Field(pattern=f"^{REPORT_NAME_PATTERN}$", max_length=64)]
Formats = Annotated[list[OutputFormat], Field(min_length=1, max_length=len(OUTPUT_FORMATS))]
Parallelism = Annotated[int, Field(ge=1, le=MAX_PARALLEL)]
ChunkSize = Annotated[int, Field(ge=1, le=MAX_CHUNK_SIZE)]
ItemsPerTask = Annotated[int, Field(ge=1, le=MAX_ITEMS_PER_TASK)]
# A batch's flow-run id (chunk outcomes are kept under it in the output store).
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
BatchId = Annotated[str, Field(pattern=f"^(local|{_UUID})$")]
ChunkIndex = Annotated[int, Field(ge=0, le=1_000_000)]
# `45m`, `1h30m` after the scheduled start, or a time of day `06:30 America/New_York`.
Deadline = Annotated[str, Field(pattern=DEADLINE_PATTERN, max_length=64)]
# Resolve relative values (`previous` month) as if the run were in this year: the demo
# data ends in 2013, so a schedule in 2026 renders the same month of 2013.
AsOfYear = Annotated[int, Field(ge=1900, le=2200)]
