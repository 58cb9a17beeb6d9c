"""How reports run on Prefect: the report flow, the batch flow and its chunks, delivery."""

from flows.batch_flow import batch
from flows.chunk_flow import render_chunk
from flows.delivery_flow import deliver
from flows.report_flow import report

__all__ = ["batch", "deliver", "render_chunk", "report"]
