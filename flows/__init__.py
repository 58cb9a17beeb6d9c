"""How reports run on Prefect: the report flow, the batch flow and its chunks, delivery."""

from reports.json_logs import json_logs_wanted, use_json_logs

if json_logs_wanted():  # REPORTRUNNER_LOG_FORMAT=json: flow-run processes log for machines
    use_json_logs()

from flows.batch_flow import batch
from flows.chunk_flow import render_chunk
from flows.delivery_flow import deliver
from flows.report_flow import report

__all__ = ["batch", "deliver", "render_chunk", "report"]
