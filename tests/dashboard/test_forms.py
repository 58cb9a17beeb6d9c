"""The run form from the real deployment schemas: widgets, defaults, bounds, batch counts, checks.

Schemas come from `deployment_schema()` for the specs `reportrunner deploy` applies
(no server needed); integer, number and boolean parameters, which no shipped report
has, come from `parameters_schema()` of a throwaway report.
"""

from __future__ import annotations

import datetime as dt

import pytest

from dashboard import forms
from deployments.deploy import deployment_schema, load_deployment_specs
from reports import ParameterError
from reports.definitions import default_catalog
from reports.schema import parameters_schema

CARRIERS = 16


@pytest.fixture(scope="module")
def schemas(settings) -> dict[str, dict]:
    """`report/<name>` and `batch/<name>` → the schema deploy stores on that deployment."""
    flows = {"flows.report_flow.report": "report", "flows.batch_flow.batch": "batch"}
    return {
        f"{flows[spec['entrypoint']]}/{spec['name']}": deployment_schema(spec)
        for spec in load_deployment_specs()
        if spec.get("entrypoint") in flows
    }


def _fields(schema: dict, batched: tuple[str, ...] = ()) -> dict[str, forms.Field]:
    return {f.name: f for f in forms.parameter_fields(schema, batched)}


def test_single_run_fields_of_carrier_monthly(schemas):
    schema = schemas["report/carrier-monthly"]
    assert forms.report_name(schema) == "carrier-monthly"
    assert not forms.is_batch(schema)
    fields = _fields(schema)
    assert list(fields) == ["carrier", "month"]

    carrier = forms.widget(fields["carrier"], "k-carrier")
    assert carrier.kind == "selectbox"
    assert len(carrier.kwargs["options"]) == CARRIERS and "AA" in carrier.kwargs["options"]
    assert carrier.kwargs["index"] is None  # required, no default: nothing preselected
    assert carrier.kwargs["label"] == "carrier (required)"
    assert carrier.kwargs["key"] == "k-carrier"
    assert carrier.kwargs["help"] == (
        "Airline code (two characters), from the airlines table. One of 16 values. Required."
    )

    month = forms.widget(fields["month"], "k-month")
    assert month.kind == "text_input"
    assert month.kwargs["placeholder"] == "YYYY-MM" and month.kwargs["value"] == ""
    # Checked on the server only, so the message under the field follows every value.
    assert "validate" not in month.kwargs
    assert "From 2013-01 to 2013-12." in month.kwargs["help"]


def test_date_widget_is_bounded_by_the_range(schemas):
    fields = _fields(schemas["report/airport-daily"])
    date = forms.widget(fields["date"], "k")
    # Typed text, so that Tab commits it (Chromium's date input dropped a typed date).
    assert date.kind == "text_input"
    assert date.kwargs["placeholder"] == "YYYY-MM-DD"
    assert "From 2013-01-01 to 2013-12-31." in date.kwargs["help"]
    assert forms.check(fields["date"], "2014-01-01").message == (
        "airport-daily: parameter 'date' is '2014-01-01', above the maximum '2013-12-31'"
    )
    assert forms.parameter_value(fields["date"], dt.date(2013, 7, 4)) == "2013-07-04"
    origin = forms.widget(fields["origin"], "k")
    assert origin.kind == "selectbox" and origin.kwargs["options"] == ["EWR", "JFK", "LGA"]


def test_static_choices_are_a_selectbox(schemas):
    quarter = _fields(schemas["report/destination-quarterly"])["quarter"]
    assert quarter.kind == "choice"
    assert forms.widget(quarter, "k").kwargs["options"] == [f"2013-Q{i}" for i in range(1, 5)]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("month", "2013-13", "parameter 'month' must be a month as YYYY-MM, got '2013-13'"),
        ("month", "2014-01", "parameter 'month' is '2014-01', above the maximum '2013-12'"),
        ("month", "2012-12", "parameter 'month' is '2012-12', below the minimum '2013-01'"),
        ("carrier", "ZZ", "parameter 'carrier' is 'ZZ', not one of: 9E, AA, AS, B6, DL, EV"),
    ],
)
def test_checks_say_what_the_engine_says(schemas, name, value, message):
    fields = _fields(schemas["report/carrier-monthly"])
    problem = forms.check(fields[name], value)
    assert problem is not None and not problem.missing
    assert problem.parameter == name
    assert problem.message.startswith(f"carrier-monthly: {message}")
    assert "\n" not in problem.message
    # The CLI and the flow reject the same value with the same sentence.
    params = {"carrier": "AA", "month": "2013-07", name: value}
    with pytest.raises(ParameterError) as engine:
        default_catalog().get("carrier-monthly").validate(params)
    assert str(engine.value) == problem.message


def test_missing_and_valid_values(schemas):
    fields = _fields(schemas["report/carrier-monthly"])
    missing = forms.check(fields["carrier"], None)
    assert missing == forms.Problem(
        "carrier", "carrier-monthly: missing required parameter 'carrier'", missing=True
    )
    assert forms.check(fields["month"], forms.parameter_value(fields["month"], "   ")).missing
    assert forms.check(fields["carrier"], "AA") is None
    assert forms.check(fields["month"], forms.parameter_value(fields["month"], " 2013-07 ")) is None
    date = _fields(schemas["report/airport-daily"])["date"]
    assert forms.check(date, "2013-02-30").message == (
        "airport-daily: parameter 'date' must be a date as YYYY-MM-DD, got '2013-02-30'"
    )
    assert forms.check(date, "2014-01-01").message.endswith("above the maximum '2013-12-31'")


KINDS_SPEC = """\
name: kinds
title: Every kind of parameter
parameters:
  copies:
    type: integer
    description: How many copies.
    min: 1
    max: 5
    default: 2
  ratio:
    type: number
    min: 0.5
  draft:
    type: boolean
    default: true
  code:
    type: string
    pattern: "[A-Z]{3}"
outputs: [pdf]
"""


@pytest.fixture
def kinds(ws) -> dict[str, forms.Field]:
    ws.add_report("kinds", spec=KINDS_SPEC)
    schema = {
        "properties": {
            "report": {"enum": ["kinds"], "default": "kinds"},
            "parameters": parameters_schema(ws.report("kinds")),
        }
    }
    return _fields(schema)


def test_number_boolean_and_text_widgets(kinds):
    assert {n: f.kind for n, f in kinds.items()} == {
        "copies": "integer",
        "ratio": "number",
        "draft": "boolean",
        "code": "text",
    }
    copies = forms.widget(kinds["copies"], "k")
    assert copies.kind == "number_input"
    assert (copies.kwargs["min_value"], copies.kwargs["max_value"]) == (1, 5)
    assert copies.kwargs["value"] == 2 and copies.kwargs["step"] == 1
    assert copies.kwargs["label"] == "copies"  # has a default: not required
    assert copies.kwargs["help"] == "How many copies. From 1 to 5. Default: 2. Optional."
    ratio = forms.widget(kinds["ratio"], "k")
    assert ratio.kwargs["min_value"] == 0.5 and ratio.kwargs["max_value"] is None
    assert isinstance(ratio.kwargs["step"], float)
    assert ratio.kwargs["label"] == "ratio (required)"
    draft = forms.widget(kinds["draft"], "k")
    assert draft.kind == "checkbox" and draft.kwargs["value"] is True
    code = forms.widget(kinds["code"], "k")
    assert code.kind == "text_input" and "Must match [A-Z]{3}." in code.kwargs["help"]


def test_number_boolean_and_text_checks(kinds):
    def message(name, value):
        problem = forms.check(kinds[name], value)
        return problem and problem.message

    assert message("copies", 0) == "kinds: parameter 'copies' is 0, below the minimum 1"
    assert message("copies", 6) == "kinds: parameter 'copies' is 6, above the maximum 5"
    assert message("copies", 2.5) == "kinds: parameter 'copies' must be an integer, got 2.5"
    assert message("copies", forms.parameter_value(kinds["copies"], 3.0)) is None
    assert message("ratio", 0.25) == "kinds: parameter 'ratio' is 0.25, below the minimum 0.5"
    assert message("ratio", float("nan")) == (
        "kinds: parameter 'ratio' must be a finite number, got nan"
    )
    assert message("draft", "yes") == "kinds: parameter 'draft' must be true or false, got 'yes'"
    assert message("code", "ab1") == (
        "kinds: parameter 'code' must be a string matching [A-Z]{3}, got 'ab1'"
    )
    assert message("code", "ABC") is None
    assert message("copies", None) is None  # optional: left out of the run
    assert forms.run_parameters("kinds", {"copies": None, "code": "ABC"}) == {
        "report": "kinds",
        "parameters": {"code": "ABC"},
    }


def test_batch_dimensions_and_their_values(schemas):
    schema = schemas["batch/carrier-monthly"]
    assert forms.is_batch(schema)
    dims = {d.name: d for d in forms.dimensions(schema)}
    assert list(dims) == ["carrier", "month"]
    assert len(dims["carrier"].values) == CARRIERS
    assert dims["month"].values == tuple(f"2013-{m:02d}" for m in range(1, 13))
    every = forms.every_values_widget(dims["carrier"], "k")
    assert every.kind == "checkbox" and every.kwargs["label"] == "All 16 values of carrier"
    values = forms.values_widget(dims["month"], "k")
    assert values.kind == "multiselect" and values.kwargs["options"][0] == "2013-01"
    days = {d.name: d for d in forms.dimensions(schemas["batch/airport-daily"])}["date"]
    assert len(days.values) == 365 and days.values[-1] == "2013-12-31"


def test_batch_count_parameters_and_checks(schemas):
    schema = schemas["batch/carrier-monthly"]
    dims = forms.dimensions(schema)
    by_name = {d.name: d for d in dims}
    months = forms.pick(by_name["month"], False, ["2013-01", "2013-02"])
    carriers = forms.pick(by_name["carrier"], True, None)
    assert forms.batch_size(dims, [months]) == 2
    assert forms.batch_size(dims, [carriers, months]) == 2 * CARRIERS
    assert forms.batch_size(dims, []) == 0
    assert forms.batch_summary(dims, [carriers, months]) == (
        "This batch renders 32 reports (16 values of carrier × 2 values of month)."
    )
    one = forms.pick(by_name["month"], False, ["2013-01"])
    assert forms.batch_summary(dims, [one]) == "This batch renders 1 report (1 value of month)."
    assert forms.batch_summary(dims, []) == "This batch renders 0 reports."

    # Parameters not batched over are shared; without a default they are required.
    shared = _fields(schema, batched=("month",))
    assert list(shared) == ["carrier"] and shared["carrier"].required
    assert forms.run_parameters("carrier-monthly", {"carrier": "UA"}, [months]) == {
        "report": "carrier-monthly",
        "over": {"month": ["2013-01", "2013-02"]},
        "parameters": {"carrier": "UA"},
    }
    assert forms.over_parameter([carriers, months]) == {
        "carrier": "*",
        "month": ["2013-01", "2013-02"],
    }
    assert forms.check_dimensions("carrier-monthly", dims, [carriers, months]) == []
    assert forms.check_dimensions("carrier-monthly", dims, []) == [
        forms.Problem(
            "over", "carrier-monthly: choose at least one dimension to batch over", missing=True
        )
    ]
    none_chosen = forms.pick(by_name["month"], False, [])
    assert forms.check_dimensions("carrier-monthly", dims, [none_chosen]) == [
        forms.Problem(
            "month", "carrier-monthly: choose at least one value of 'month' to batch over", True
        )
    ]


def test_open_dimension_values_are_typed_and_checked(schemas):
    # A month dimension without bounds has no list to pick from: values are typed in.
    schema = schemas["batch/carrier-monthly"]
    month = {d.name: d for d in forms.dimensions(schema)}["month"]
    open_month = forms.Dimension("month", None, month.field)
    widget = forms.values_widget(open_month, "k")
    assert widget.kind == "text_input"
    typed = forms.pick(open_month, True, " 2013-01, 2013-13 ,")  # "all" needs a list
    assert typed == forms.DimensionPick("month", False, ("2013-01", "2013-13"))
    assert [p.message for p in forms.check_pick(open_month, typed)] == [
        "carrier-monthly: parameter 'month' must be a month as YYYY-MM, got '2013-13'"
    ]


def test_run_target_names_the_run_for_the_audit_log():
    single = {"report": "carrier-monthly", "parameters": {"carrier": "AA", "month": "2013-07"}}
    assert forms.run_target(single) == "carrier-monthly carrier=AA month=2013-07"
    batch = {
        "report": "carrier-monthly",
        "over": {"carrier": "*", "month": ["2013-01", "2013-02"]},
        "parameters": {},
    }
    assert forms.run_target(batch) == ("carrier-monthly batch over carrier=* month=2013-01,2013-02")
