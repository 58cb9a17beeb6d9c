"""destination-quarterly: one destination's quarter of flights from New York, via SQL.

The queries live in `queries/*.sql` and run with bound `:name` parameters; the
database does the aggregation, so only a few hundred rows reach pandas:

- `airport`: the destination airport (one row);
- `flights`: counts and sums per month, origin airport and carrier;
- `daily`: scheduled flights per day and origin airport.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from reports.charts import bar_chart, line_chart
from reports.tables import Table

SAMPLE = {"dest": "ATL", "quarter": "2013-Q3"}
ON_TIME_MINUTES = 15  # the US DOT definition: arriving less than 15 minutes late
_QUERIES = Path(__file__).parent / "queries"
_COUNTS = ["flights", "flown", "arrived", "on_time", "seated", "seats"]
_HALF = (3.25, 1.9)  # one chart of a side-by-side pair, in inches
_MEASURES = {
    "flights": "Flights",
    "share": "Share",
    "cancelled": "Cancelled",
    "seats": "Seats flown",
    "seat_coverage": "Aircraft known",
    "mean_arr_delay": "Mean arr. delay (min)",
    "on_time_rate": "On time",
}
_FORMATS = {
    "flights": ",d",
    "share": ".1%",
    "cancelled": ",d",
    "seats": ",d",
    "seat_coverage": ".0%",
    "mean_arr_delay": ".1f",
    "on_time_rate": ".1%",
}


def load(params, source):
    year, first_month, last_month = _quarter_months(params["quarter"])
    period = {
        "dest": params["dest"],
        "year": year,
        "first_month": first_month,
        "last_month": last_month,
    }
    flights = source.query(_sql("flights"), **period, on_time_minutes=ON_TIME_MINUTES)
    daily = source.query(_sql("daily"), **period)
    return {
        "airport": source.query(_sql("airport"), dest=params["dest"]),
        # Empty results come back untyped; drivers differ on integer widths.
        "flights": flights.astype(
            {**dict.fromkeys(_COUNTS, "int64"), "arr_delay_sum": "float64", "month": "int64"}
        ),
        "daily": daily.astype({"month": "int64", "day": "int64", "flights": "int64"}),
    }


def build_context(data, params):
    cube, daily = data["flights"], data["daily"]
    airport = data["airport"]["name"].iloc[0] if len(data["airport"]) else params["dest"]
    year, first_month, last_month = _quarter_months(params["quarter"])
    months = [dt.date(year, m, 1) for m in range(first_month, last_month + 1)]
    total = _rollup(cube, [])
    where = f"{params['dest']} in {params['quarter']}"

    carriers = _rollup(cube, ["carrier", "carrier_name"], total)
    origins = _rollup(cube, ["origin", "origin_name"], total)
    origins["carriers"] = origins["origin"].map(cube.groupby("origin")["carrier"].nunique())
    by_month = _rollup(cube, ["month"], total)
    by_month = (
        pd.DataFrame({"month": [m.month for m in months]})
        .merge(by_month, on="month", how="left")
        .fillna({c: 0 for c in [*_COUNTS, "cancelled", "share"]})
    )
    by_month.insert(0, "month_name", [f"{m:%B %Y}" for m in months])

    return {
        "airport": airport,
        "period": f"{months[0]:%B}–{months[-1]:%B %Y}",
        "flight_count": int(total["flights"].sum()),
        "carrier_count": len(carriers),
        "origin_count": len(origins),
        "kpis": _kpis(total, carriers, origins),
        "monthly_chart": bar_chart(
            [f"{m:%b}" for m in months],
            by_month["flights"].tolist(),
            title="Flights per month",
            alt=f"Bar chart of flights per month to {where}: "
            + "; ".join(f"{m:%B} {n:,}" for m, n in zip(months, by_month["flights"], strict=True))
            + ".",
            xlabel="Month",
            ylabel="Flights",
            size=_HALF,
        ),
        "delay_chart": bar_chart(
            [f"{m:%b}" for m in months],
            by_month["mean_arr_delay"].fillna(0).round(1).tolist(),
            title="Mean arrival delay per month (minutes; negative = early)",
            alt=f"Bar chart of mean arrival delay per month for flights to {where}: "
            + "; ".join(
                f"{m:%B} {_minutes(d)}"
                for m, d in zip(months, by_month["mean_arr_delay"], strict=True)
            )
            + ".",
            xlabel="Month",
            ylabel="Minutes",
            size=_HALF,
        ),
        "daily_chart": _daily_chart(daily, year, where),
        "carriers": Table(
            "carriers",
            carriers,
            "Carriers serving the route, busiest first",
            columns={"carrier": "Code", "carrier_name": "Carrier", **_MEASURES},
            formats=_FORMATS,
        ),
        "origins": Table(
            "origins",
            origins,
            "Flights by New York origin airport, busiest first",
            columns={
                "origin": "Code",
                "origin_name": "Airport",
                "carriers": "Carriers",
                **_MEASURES,
            },
            formats={**_FORMATS, "carriers": ",d"},
        ),
        "months": Table(
            "months",
            by_month,
            "Each month of the quarter",
            columns={"month_name": "Month", **_MEASURES},
            formats=_FORMATS,
        ),
    }


def _rollup(cube, keys, total=None):
    """Sum the cube over everything but `keys`, then derive rates and means."""
    summed = (
        cube.groupby(keys, as_index=False)[[*_COUNTS, "arr_delay_sum"]].sum(min_count=1)
        if keys
        else cube[[*_COUNTS, "arr_delay_sum"]].sum(min_count=1).to_frame().T
    )
    summed[_COUNTS] = summed[_COUNTS].fillna(0).astype("int64")
    summed["arr_delay_sum"] = summed["arr_delay_sum"].astype("float64")
    summed["cancelled"] = summed["flights"] - summed["flown"]
    arrived = summed["arrived"].where(summed["arrived"] > 0)  # no arrivals: no mean, no rate
    summed["mean_arr_delay"] = summed["arr_delay_sum"] / arrived
    summed["on_time_rate"] = summed["on_time"] / arrived
    summed["seat_coverage"] = summed["seated"] / summed["flown"].where(summed["flown"] > 0)
    if total is not None:
        summed["share"] = summed["flights"] / max(int(total["flights"].sum()), 1)
        summed = summed.sort_values(["flights", *keys], ascending=[False, *[True] * len(keys)])
    return summed.reset_index(drop=True)


def _kpis(total, carriers, origins):
    row = total.iloc[0]
    flights, seated, flown = int(row["flights"]), int(row["seated"]), int(row["flown"])
    busiest = carriers.iloc[0] if len(carriers) else None
    return [
        {
            "label": "Flights",
            "value": f"{flights:,}",
            "note": f"scheduled; {int(row['cancelled']):,} cancelled",
        },
        {
            "label": "Carriers",
            "value": f"{len(carriers):,}",
            "note": f"busiest: {busiest['carrier_name']} ({busiest['share']:.0%})"
            if busiest is not None
            else "none",
        },
        {
            "label": "Seats flown",
            "value": f"{int(row['seats']):,}",
            "note": f"on {seated:,} of {flown:,} flights with a known aircraft",
        },
        {
            "label": "Mean arr. delay",
            "value": _minutes(row["mean_arr_delay"]),
            "note": f"over {int(row['arrived']):,} arrivals",
        },
        {
            "label": "On-time rate",
            "value": _pct(row["on_time_rate"]),
            "note": f"arrived < {ON_TIME_MINUTES} min late",
        },
        {
            "label": "Origins",
            "value": f"{len(origins):,}",
            "note": ", ".join(origins["origin"]) or "none",
        },
    ]


def _daily_chart(daily, year, where):
    per_day = daily.groupby(["month", "day"], as_index=False)["flights"].sum()
    dates = [dt.date(year, m, d) for m, d in zip(per_day["month"], per_day["day"], strict=True)]
    if len(per_day):
        peak = per_day.loc[per_day["flights"].idxmax()]
        low = per_day.loc[per_day["flights"].idxmin()]
        summary = (
            f"between {int(low['flights'])} and {int(peak['flights'])} flights a day, "
            f"busiest on {dt.date(year, int(peak['month']), int(peak['day'])):%d %B}"
        )
    else:
        summary = "no flights"
    return line_chart(
        dates,
        {"Flights": per_day["flights"].tolist()},
        title="Scheduled flights per day (all New York airports)",
        alt=f"Line chart of daily flights to {where}: {summary}.",
        ylabel="Flights",
        size=(6.8, 1.7),
    )


def _quarter_months(quarter):
    """'2013-Q3' as (2013, 7, 9): the year and the quarter's first and last month."""
    year, number = quarter.split("-Q")
    first = 3 * (int(number) - 1) + 1
    return int(year), first, first + 2


def _sql(name):
    return (_QUERIES / f"{name}.sql").read_text(encoding="utf-8")


def _pct(value):
    return "–" if pd.isna(value) else f"{value:.1%}"


def _minutes(value):
    return "–" if pd.isna(value) else f"{value:.1f} min"
