"""airport-daily: one New York airport's day of departures against its hourly weather.

Flights are joined with the weather observed at the origin in their scheduled
departure hour (keys: origin, year, month, day, hour).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from reports.charts import bar_chart, line_chart
from reports.tables import Table

SAMPLE = {"origin": "JFK", "date": "2013-07-04"}
ON_TIME_MINUTES = 15  # the US DOT definition: arriving less than 15 minutes late
TOP_DELAYED = 15  # departures shown in the PDF; the CSV keeps every departure
_KEYS = ["origin", "year", "month", "day", "hour"]
_HOURLY_COLUMNS = [
    "hour",
    "departures",
    "cancelled",
    "mean_dep_delay",
    "temp",
    "wind_speed",
    "visib",
    "precip",
]
_SMALL = (3.2, 1.35)  # one panel of the 2 × 2 weather grid, in inches
_WIDE = (6.8, 1.55)


def load(params, source):
    day = dt.date.fromisoformat(params["date"])
    where = {"origin": params["origin"], "year": day.year, "month": day.month, "day": day.day}
    flights = source.table("flights", where=where)
    airlines = source.table("airlines")
    return {
        "flights": flights,
        "weather": source.table("weather", where=where),
        "airport": source.table("airports", where={"faa": params["origin"]}),
        "airlines": airlines[airlines["carrier"].isin(flights["carrier"].unique())].reset_index(
            drop=True
        ),
    }


def build_context(data, params):
    flights = data["flights"]
    weather = _hourly_weather(data["weather"])
    airport = data["airport"]["name"].iloc[0] if len(data["airport"]) else params["origin"]
    day = dt.date.fromisoformat(params["date"])
    hourly = _hourly(flights, weather)
    busy = hourly[hourly["departures"] > 0]
    place = f"{params['origin']} on {params['date']}"

    return {
        "airport": airport,
        "day_label": f"{day:%A}, {day.day} {day:%B %Y}",
        "flight_count": len(flights),
        "cancelled_count": int(flights["dep_time"].isna().sum()),
        "weather_hours": len(weather),
        "highlights": _highlights(busy, weather),
        "flight_kpis": _flight_kpis(flights),
        "weather_kpis": _weather_kpis(data["weather"]),
        "departures_chart": bar_chart(
            [f"{h:02d}" for h in busy["hour"]],
            busy["departures"].tolist(),
            title="Scheduled departures by hour",
            alt=f"Bar chart of scheduled departures per hour at {place}: "
            f"{len(flights)} in total; {_peak(busy, 'departures', '{:.0f} departures')}.",
            xlabel="Scheduled departure hour",
            ylabel="Departures",
            size=_WIDE,
        ),
        "delay_chart": bar_chart(
            [f"{h:02d}" for h in busy["hour"]],
            busy["mean_dep_delay"].fillna(0).round(1).tolist(),
            title="Mean departure delay by scheduled hour (minutes; negative = early)",
            alt=f"Bar chart of mean departure delay per scheduled hour at {place}; "
            f"{_peak(busy, 'mean_dep_delay', 'worst {:.0f} min')}.",
            xlabel="Scheduled departure hour",
            ylabel="Minutes",
            size=_WIDE,
        ),
        "weather_charts": _weather_charts(weather, place),
        "hourly": Table(
            "hourly",
            hourly,
            "Departures in each scheduled hour, with the weather observed in that hour",
            columns={
                "hour": "Hour",
                "departures": "Departures",
                "cancelled": "Cancelled",
                "mean_dep_delay": "Mean dep. delay (min)",
                "temp": "Temp. (°F)",
                "wind_speed": "Wind (mph)",
                "visib": "Visibility (mi)",
                "precip": "Precip. (in)",
            },
            formats={
                "hour": "02d",
                "departures": ",d",
                "cancelled": ",d",
                "mean_dep_delay": ".1f",
                "temp": ".1f",
                "wind_speed": ".1f",
                "visib": ".1f",
                "precip": ".2f",
            },
        ),
        "departures": Table(
            "departures",
            _departures(flights, weather, data["airlines"]),
            "Most delayed departures first, with the weather in their scheduled hour",
            columns={
                "carrier": "Carrier",
                "airline": "Airline",
                "flight": "Flight",
                "dest": "To",
                "scheduled": "Sched.",
                "departed": "Actual",
                "dep_delay": "Dep. delay (min)",
                "arr_delay": "Arr. delay (min)",
                "wind_speed": "Wind (mph)",
                "visib": "Vis. (mi)",
            },
            formats={
                "flight": "d",
                "dep_delay": ",.0f",
                "arr_delay": ",.0f",
                "wind_speed": ".1f",
                "visib": ".1f",
            },
            max_rows=TOP_DELAYED,
        ),
    }


def _hourly_weather(weather):
    """One row per hour: the autumn clock change repeats 01:00, so its readings are combined."""
    return (
        weather.groupby(_KEYS, as_index=False)
        .agg(
            temp=("temp", "mean"),
            wind_speed=("wind_speed", "mean"),
            visib=("visib", "mean"),
            precip=("precip", "sum"),
        )
        .sort_values("hour", ignore_index=True)
    )


def _hourly(flights, weather):
    """Departures per scheduled hour, outer-joined with that hour's weather."""
    per_hour = (
        flights.assign(cancelled=flights["dep_time"].isna())
        .groupby(_KEYS, as_index=False)
        .agg(
            departures=("flight", "size"),
            cancelled=("cancelled", "sum"),
            mean_dep_delay=("dep_delay", "mean"),
        )
    )
    if per_hour.empty and weather.empty:
        # Nothing to join, and pandas 3.1 cannot merge two empty Arrow-backed string keys.
        return pd.DataFrame(columns=_HOURLY_COLUMNS)
    hourly = per_hour.merge(weather, on=_KEYS, how="outer").sort_values("hour", ignore_index=True)
    hourly[["departures", "cancelled"]] = hourly[["departures", "cancelled"]].fillna(0).astype(int)
    return hourly[_HOURLY_COLUMNS]


def _departures(flights, weather, airlines):
    """Every departure with its hour's weather, most delayed first (cancelled last)."""
    names = dict(zip(airlines["carrier"], airlines["name"], strict=False))
    joined = flights.merge(weather, on=_KEYS, how="left")
    joined = joined.assign(
        airline=joined["carrier"].map(names).fillna(""),
        scheduled=joined["sched_dep_time"].map(_clock),
        departed=joined["dep_time"].map(_clock).where(joined["dep_time"].notna(), "cancelled"),
    )
    joined = joined.sort_values(
        ["dep_delay", "sched_dep_time"],
        ascending=[False, True],
        na_position="last",
        ignore_index=True,
    )
    return joined[
        [
            "carrier",
            "airline",
            "flight",
            "dest",
            "scheduled",
            "departed",
            "dep_delay",
            "arr_delay",
            "temp",
            "wind_speed",
            "visib",
            "precip",
        ]
    ]


def _flight_kpis(flights):
    flown = flights[flights["dep_time"].notna()]
    arrived = flights[flights["arr_delay"].notna()]
    cancelled = len(flights) - len(flown)
    on_time = (arrived["arr_delay"] < ON_TIME_MINUTES).mean() if len(arrived) else float("nan")
    late = int((flown["dep_delay"] >= 60).sum())
    return [
        {
            "label": "Departures",
            "value": f"{len(flights):,}",
            "note": f"scheduled; {len(flown):,} flown",
        },
        {
            "label": "Cancelled",
            "value": f"{cancelled:,}",
            "note": f"{_pct(cancelled / len(flights))} of scheduled" if len(flights) else "–",
        },
        {
            "label": "On-time rate",
            "value": _pct(on_time),
            "note": f"arrived < {ON_TIME_MINUTES} min late",
        },
        {
            "label": "Mean dep. delay",
            "value": _number(flown["dep_delay"].mean(), " min"),
            "note": f"{late:,} left 60+ min late",
        },
    ]


def _weather_kpis(weather):
    hours = weather["hour"].nunique()
    return [
        {
            "label": "Mean temperature",
            "value": _number(weather["temp"].mean(), " °F"),
            "note": f"range {_number(weather['temp'].min())}–{_number(weather['temp'].max())} °F"
            if hours
            else "no observations",
        },
        {
            "label": "Max wind speed",
            "value": _number(weather["wind_speed"].max(), " mph"),
            "note": f"gusts to {_number(weather['wind_gust'].max(), ' mph')}"
            if weather["wind_gust"].notna().any()
            else "no gusts reported",
        },
        {
            "label": "Total precipitation",
            "value": _number(weather["precip"].sum(), " in", 2) if hours else "–",
            "note": f"{weather.loc[weather['precip'] > 0, 'hour'].nunique()} wet hours",
        },
        {
            "label": "Lowest visibility",
            "value": _number(weather["visib"].min(), " mi"),
            "note": f"{hours} of 24 hours observed",
        },
    ]


def _weather_charts(weather, place):
    """The 2 × 2 weather grid; precipitation is only drawn when some fell."""
    hours = weather["hour"].tolist()

    def line(columns, title, unit, what):
        values = weather[next(iter(columns))]
        summary = (
            f"from {values.min():.1f} to {values.max():.1f} {unit}"
            if values.notna().any()
            else "no readings"
        )
        return line_chart(
            hours,
            {label: weather[column].round(2).tolist() for column, label in columns.items()},
            title=f"{title} ({unit})",
            alt=f"Line chart of hourly {what} at {place}: {summary}.",
            xlabel="Hour",
            size=_SMALL,
        )

    wet = weather.loc[weather["precip"] > 0, "hour"]
    rain = None
    if len(wet):
        rain = line(
            {"precip": "Precipitation"},
            "Precipitation",
            "in",
            f"precipitation ({weather['precip'].sum():.2f} in in total, "
            f"wet hours {', '.join(f'{h:02d}' for h in wet)})",
        )
    return {
        "temperature": line({"temp": "Temperature"}, "Temperature", "°F", "temperature"),
        "wind": line({"wind_speed": "Wind speed"}, "Wind speed", "mph", "wind speed"),
        "visibility": line({"visib": "Visibility"}, "Visibility", "miles", "visibility"),
        "precipitation": rain,
    }


def _highlights(busy, weather):
    """Short sentences for the summary; empty when there is nothing to say."""
    notes = []
    if len(busy):
        notes.append(f"Busiest hour: {_peak(busy, 'departures', '{:.0f} departures')}.")
        if busy["mean_dep_delay"].notna().any():
            notes.append(
                f"Worst delays: {_peak(busy, 'mean_dep_delay', 'mean departure delay {:.0f} min')}."
            )
    if weather["precip"].sum() > 0:
        wettest = weather.loc[weather["precip"].idxmax()]
        notes.append(f"Heaviest rain: {int(wettest['hour']):02d}:00 ({wettest['precip']:.2f} in).")
    return notes


def _peak(frame, column, label):
    if frame.empty or frame[column].isna().all():
        return "no data"
    row = frame.loc[frame[column].idxmax()]
    return f"{int(row['hour']):02d}:00 ({label.format(row[column])})"


def _clock(hhmm):
    """An HHMM number such as 517 as '05:17'."""
    if pd.isna(hhmm):
        return ""
    hhmm = int(hhmm)
    return f"{hhmm // 100:02d}:{hhmm % 100:02d}"


def _pct(value):
    return "–" if pd.isna(value) else f"{value:.1%}"


def _number(value, unit="", digits=1):
    return "–" if pd.isna(value) else f"{value:,.{digits}f}{unit}"
