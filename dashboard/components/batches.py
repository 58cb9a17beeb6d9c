"""Running batches as progress bars: "N of M done, K failed, ETA …"."""

from __future__ import annotations

import streamlit as st

from dashboard.api import ActiveBatches, BatchProgress
from dashboard.formatting import clock, duration, state_label


def active_batches(batches: ActiveBatches) -> None:
    if not batches.batches:
        st.caption("No batch is running.")
        return
    for batch in batches.batches:
        batch_card(batch)
    if batches.total > len(batches.batches):
        st.caption(f"{len(batches.batches)} of {batches.total} running batches shown.")


def batch_card(batch: BatchProgress) -> None:
    with st.container(border=True):
        st.markdown(f"**{batch.name}**  \n{state_label('RUNNING', batch.state)}")
        st.progress(min(1.0, (batch.percent or 0) / 100), text=batch_text(batch))
        ran = f", running for {duration(batch.elapsed_s)}" if batch.elapsed_s is not None else ""
        st.caption(f"Started {clock(batch.started_at)}{ran}")


def batch_text(batch: BatchProgress) -> str:
    """'5 of 12 done, 2 failed, ETA 1 min 05 s' from the parsed progress artifact."""
    if batch.total is None:
        if batch.percent is not None:
            return f"{batch.percent:.0f} % done" + (
                f" — {batch.description}" if batch.description else ""
            )
        return "Waiting for the first progress report"
    text = f"{batch.done} of {batch.total} done"
    if batch.unchanged:
        text += f" ({batch.unchanged} unchanged)"
    text += f", {batch.failed or 0} failed"
    if batch.eta:
        text += f", ETA {batch.eta}"
    return text
