"""What stands out: slow runs, failure spikes, failures grouped by error signature."""

from __future__ import annotations

import streamlit as st

from dashboard.api import FailureGroup, FailureSpike, SlowRun
from dashboard.formatting import clock, duration, escape_markdown, time_span, times_slower

EXAMPLE_RUNS = 5  # example runs linked per failure group


def slow_runs_list(slow: list[SlowRun], limit: int = 10) -> None:
    """Each slow run linked to its detail page, with how much slower it was."""
    if not slow:
        st.caption("✅ No run took more than three times its report's median.")
        return
    lines = [
        f"- 🐢 [{escape_markdown(r.name)}](run?id={r.run_id}) — {duration(r.duration_s)}, "
        f"{times_slower(r.ratio)} the median of {escape_markdown(r.report)} "
        f"({duration(r.report_median_s)})"
        for r in slow[:limit]
    ]
    st.markdown("\n".join(lines))
    if len(slow) > limit:
        st.caption(f"{limit} of {len(slow)} slow runs shown, slowest relative first.")


def failure_spikes_list(spikes: list[FailureSpike]) -> None:
    if not spikes:
        st.caption("✅ No time slot with far more failures than usual.")
        return
    st.markdown(
        "\n".join(
            f"- 🔺 {time_span(s.start, s.end)}: **{s.failed} failed or crashed** "
            f"(typically {s.typical:g} per slot)"
            for s in spikes
        )
    )


def failure_group_card(group: FailureGroup) -> st.delta_generator.DeltaGenerator:
    """One error signature: how often, where, the latest message and example runs.

    Returns the card, so the page can add its controls inside it.
    """
    card = st.container(border=True)
    with card:
        runs = "run" if group.count == 1 else "runs"
        code = group.signature.replace("`", "'")  # a backtick would end the code span
        st.markdown(f"❌ **{group.count} failed {runs}** · `{code}`")
        st.caption(
            f"Reports: {escape_markdown(', '.join(group.reports))} · "
            f"latest {clock(group.latest)}  \n"
            f"Latest message: {escape_markdown(group.example)}"
        )
        links = "\n".join(
            f"- [{escape_markdown(name)}](run?id={run_id})" for name, run_id in example_runs(group)
        )
        more = f"\n\n…and {group.count - EXAMPLE_RUNS} more" if group.count > EXAMPLE_RUNS else ""
        st.markdown(f"Example runs, newest first:\n{links}{more}")
    return card


def example_runs(group: FailureGroup) -> list[tuple[str, str]]:
    """(business name, run id) of the newest runs of a group: a link reads as the run."""
    names = group.run_names or []
    return [
        (names[i] if i < len(names) and names[i] else run_id, run_id)
        for i, run_id in enumerate(group.run_ids[:EXAMPLE_RUNS])
    ]
