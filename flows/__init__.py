"""How reports run on Prefect: the report flow, the batch flow and its chunks."""

from flows.batch_flow import batch
from flows.chunk_flow import render_chunk
from flows.report_flow import report

__all__ = ["batch", "render_chunk", "report"]
