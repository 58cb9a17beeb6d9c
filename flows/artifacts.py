"""Prefect artifacts that let an operator read a run in the Prefect UI."""

from __future__ import annotations

import json
from typing import Any

from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

from reports import OutputStore
from reports.contracts import BATCH_ITEMS, BATCH_SUMMARY, SUMMARY, Outcome, artifact_key


def publish_report_artifacts(manifest: dict[str, Any], store: OutputStore) -> None:
    """A markdown summary and one link per output file of a single report run."""
    params = ", ".join(f"`{k}={v}`" for k, v in manifest["parameters"].items())
    quality = manifest["quality"]
    lines = [
        f"### {manifest['title']}",
        f"Parameters: {params}",
        "",
        f"- Pages: **{manifest['pages']}**",
        f"- Rows loaded: {', '.join(f'{k} {v:,}' for k, v in manifest['rows'].items())}",
        f"- Quality: **{quality['status']}**"
        + (f" — {'; '.join(quality['issues'])}" if quality["issues"] else ""),
        f"- Output folder: `{store.uri(manifest['item_dir'])}`",
        "",
        "| file | bytes | sha256 |",
        "|---|---:|---|",
        *(f"| {f['name']} | {f['bytes']:,} | `{f['sha256'][:16]}…` |" for f in manifest["files"]),
    ]
    create_markdown_artifact(
        "\n".join(lines),
        key=artifact_key(manifest["report"], SUMMARY),
        description=f"{manifest['report']} outputs",
    )
    for entry in manifest["files"]:
        create_link_artifact(
            link=store.uri(entry["path"]),
            link_text=entry["name"],
            description=f"{entry['bytes']:,} bytes",
        )


def publish_batch_artifacts(report: str, outcomes: list[Outcome], summary: str) -> None:
    """The table of every item and a markdown summary that lists the failures first.

    The table's `params` column holds each item's parameters as JSON: "retry the
    failed items" reads them back from it, never from the human-readable key.
    """
    failed = [o for o in outcomes if o.status == "failed"]
    lines = [f"### Batch {report}", summary, ""]
    if failed:
        lines += ["**Failed items**", "", "| item | error |", "|---|---|"]
        lines += [f"| {o.key} | {_cell(o.error)} |" for o in failed]
    warned = [o for o in outcomes if o.quality == "warning"]
    if warned:
        lines += [
            "",
            f"**{len(warned)} item(s) passed with quality warnings:** "
            + ", ".join(o.key for o in warned[:50]),
        ]
    create_markdown_artifact("\n".join(lines), key=artifact_key(report, BATCH_SUMMARY))
    create_table_artifact(
        batch_item_rows(outcomes), key=artifact_key(report, BATCH_ITEMS), description=summary
    )


def batch_item_rows(outcomes: list[Outcome]) -> list[dict[str, Any]]:
    """The rows of the batch-items table (read back by `reports.contracts.item_row_params`)."""
    return [
        {
            "item": o.key,
            "status": o.status,
            "quality": o.quality or "",
            "pages": o.pages or "",
            "seconds": o.duration_s or "",
            "attempts": o.attempts or "",
            "error": o.error or "",
            "params": json.dumps(o.params, default=str),
        }
        for o in outcomes
    ]


def _cell(text: str | None) -> str:
    return (text or "").replace("|", "\\|").replace("\n", " ")[:300]
