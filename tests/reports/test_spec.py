"""spec.yaml parsing and parameter validation: every user error has an exact message."""

from __future__ import annotations

import datetime as dt

import pytest

from reports.errors import ParameterError, SpecError
from reports.spec import ParameterSpec, ReportSpec, load_spec, range_values

SALES = """\
name: sales
title: Sales
parameters:
  region: {type: string, choices: [north, south]}
  month: {type: month, min: "2013-01", max: "2013-12"}
  top: {type: integer, default: 10, min: 1, max: 50}
  share: {type: number, default: 0.5, min: 0, max: 1}
  detailed: {type: boolean, default: false}
  day: {type: date, default: "2013-01-01", min: "2013-01-01", max: "2013-12-31"}
  code: {type: string, default: AA, pattern: "[A-Z0-9]{2}"}
batch:
  dimensions: [region, month]
"""
REQUIRED = {"region": "north", "month": "2013-07"}
KNOWN = "region, month, top, share, detailed, day, code"


@pytest.fixture
def write_spec(tmp_path, kit):
    """Write `<tmp_path>/<folder>/spec.yaml`; return its path."""
    return lambda folder, text: kit.write_spec(tmp_path, folder, text)


@pytest.fixture
def sales(write_spec) -> ReportSpec:
    return load_spec(write_spec("sales", SALES))


@pytest.fixture
def spec_error(write_spec):
    """Load a spec that must fail; return (path, message)."""
    return lambda folder, text: _spec_error(write_spec(folder, text))


def _spec_error(path) -> tuple[str, str]:
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    return str(path), str(caught.value)


def param_error(spec: ReportSpec, **overrides) -> str:
    with pytest.raises(ParameterError) as caught:
        spec.validate_params({**REQUIRED, **overrides})
    return str(caught.value)


# --- spec.yaml ---------------------------------------------------------------------


def test_valid_spec_loads_with_its_fields(sales):
    assert sales.name == "sales"
    assert list(sales.parameters) == ["region", "month", "top", "share", "detailed", "day", "code"]
    assert sales.batch.dimensions == ["region", "month"]
    assert sales.parameters["region"].required and not sales.parameters["top"].required
    # Defaults of the optional sections.
    assert sales.outputs == ["pdf", "html", "csv"]
    assert sales.quality.on_violation == "fail"
    assert sales.pdf.max_table_rows == 40


def test_malformed_yaml_names_file_and_line(spec_error):
    path, message = spec_error("broken", "name: broken\ntitle: a: b\n")
    assert message == f"{path}: line 2 invalid YAML: mapping values are not allowed here"


def test_unclosed_flow_sequence_names_line(spec_error):
    text = "name: broken\ntitle: Broken\nparameters:\n  a: {type: string\n"
    path, message = spec_error("broken", text)
    assert message.startswith(f"{path}: line 5 invalid YAML: ")


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("- a\n- b\n", "list"),
        ("just text\n", "str"),
        ("", "NoneType"),
    ],
)
def test_spec_must_be_a_mapping(spec_error, text, kind):
    path, message = spec_error("listy", text)
    assert message == f"{path}: spec must be a mapping of fields, got {kind}"


def test_unknown_top_level_field_is_rejected(spec_error):
    path, message = spec_error("extra", "name: extra\ntitle: X\ncolour: red\n")
    assert message == f"{path}: colour: Extra inputs are not permitted"


def test_unknown_parameter_field_is_rejected(spec_error):
    text = "name: extra\ntitle: X\nparameters:\n  month: {type: month, kind: monthly}\n"
    path, message = spec_error("extra", text)
    assert message == f"{path}: parameters.month.kind: Extra inputs are not permitted"


def test_missing_title_is_reported(spec_error):
    path, message = spec_error("untitled", "name: untitled\n")
    assert message == f"{path}: title: Field required"


def test_unknown_parameter_type_is_reported(spec_error):
    text = "name: typed\ntitle: X\nparameters:\n  n: {type: text}\n"
    path, message = spec_error("typed", text)
    assert message == (
        f"{path}: parameters.n.type: Input should be 'string', 'integer', 'number', "
        "'boolean', 'date' or 'month'"
    )


def test_batch_dimension_must_be_a_parameter(spec_error):
    text = (
        "name: fan\ntitle: X\nparameters:\n  month: {type: month}\nbatch:\n  dimensions: [region]\n"
    )
    path, message = spec_error("fan", text)
    assert message == f"{path}: spec: Value error, batch dimension 'region' is not a parameter"


def test_name_must_match_folder(spec_error):
    path, message = spec_error("folder-name", "name: other-name\ntitle: X\n")
    assert message == f"{path}: name 'other-name' must match its folder name 'folder-name'"


def test_name_must_be_a_slug(spec_error):
    path, message = spec_error("Bad_Name", "name: Bad_Name\ntitle: X\n")
    assert message == (
        f"{path}: name: Value error, must be lowercase letters, digits and dashes, "
        "starting with a letter"
    )


def test_invalid_output_format_is_reported(spec_error):
    path, message = spec_error("fmt", "name: fmt\ntitle: X\noutputs: [pdf, docx]\n")
    assert message == f"{path}: outputs.1: Input should be 'pdf', 'html' or 'csv'"


def test_unreadable_spec_names_file(write_spec):
    path = write_spec("latin", "")
    path.write_bytes(b"name: latin\ntitle: Caf\xe9\n")
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert str(caught.value) == (
        f"{path}: cannot read spec: 'utf-8' codec can't decode byte 0xe9 in position 22: "
        "invalid continuation byte"
    )


# --- parameter validation ------------------------------------------------------------


def test_defaults_are_applied(sales):
    assert sales.validate_params(REQUIRED) == {
        "region": "north",
        "month": "2013-07",
        "top": 10,
        "share": 0.5,
        "detailed": False,
        "day": "2013-01-01",
        "code": "AA",
    }


def test_string_values_are_converted_to_their_types(sales):
    params = sales.validate_params(
        {**REQUIRED, "top": "7", "share": "0.25", "detailed": "yes", "day": "2013-02-03"}
    )
    assert (params["top"], params["share"], params["detailed"], params["day"]) == (
        7,
        0.25,
        True,
        "2013-02-03",
    )


def test_typed_values_are_accepted(sales):
    params = sales.validate_params(
        {
            "region": "south",
            "month": dt.date(2013, 7, 9),
            "top": 3.0,
            "detailed": False,
            "day": dt.date(2013, 5, 6),
        }
    )
    assert (params["month"], params["top"], params["detailed"], params["day"]) == (
        "2013-07",
        3,
        False,
        "2013-05-06",
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true", True),
        ("Yes", True),
        ("1", True),
        ("false", False),
        ("NO", False),
        ("0", False),
    ],
)
def test_boolean_spellings(sales, text, expected):
    assert sales.validate_params({**REQUIRED, "detailed": text})["detailed"] is expected


def test_unknown_parameter(sales):
    assert param_error(sales, colour="red") == (
        f"sales: unknown parameter 'colour' (parameters: {KNOWN})"
    )


def test_unknown_parameter_when_spec_has_none(write_spec):
    spec = load_spec(write_spec("bare", "name: bare\ntitle: Bare\n"))
    with pytest.raises(ParameterError) as caught:
        spec.validate_params({"month": "2013-01"})
    assert str(caught.value) == "bare: unknown parameter 'month' (parameters: none)"


@pytest.mark.parametrize(
    "raw",
    [{"region": "north"}, {"region": "north", "month": ""}, {"region": "north", "month": None}],
)
def test_missing_required_parameter(sales, raw):
    with pytest.raises(ParameterError) as caught:
        sales.validate_params(raw)
    assert str(caught.value) == "sales: missing required parameter 'month'"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("top", "ten", "of type integer"),
        ("top", 2.5, "an integer"),
        ("top", True, "an integer"),
        ("share", "lots", "of type number"),
        ("share", True, "a number"),
        ("detailed", "maybe", "true or false"),
        ("day", "2013-02-30", "a date as YYYY-MM-DD"),
        ("day", "03/02/2013", "a date as YYYY-MM-DD"),
        ("month", "2013-13", "a month as YYYY-MM"),
        ("month", "July", "a month as YYYY-MM"),
        ("month", "2013-7", "a month as YYYY-MM"),
        ("code", "aa1", "a string matching [A-Z0-9]{2}"),
        ("code", ["AA"], "a string"),
    ],
)
def test_wrong_type(sales, name, value, expected):
    assert param_error(sales, **{name: value}) == (
        f"sales: parameter '{name}' must be {expected}, got {value!r}"
    )


def test_value_outside_choices(sales):
    assert param_error(sales, region="east") == (
        "sales: parameter 'region' is 'east', not one of: north, south"
    )


def test_long_choice_lists_are_cut_in_the_message():
    choices = [f"c{i:02d}" for i in range(25)]
    spec = ReportSpec.model_validate(
        {"name": "many", "title": "Many", "parameters": {"c": {"choices": choices}}}
    )
    with pytest.raises(ParameterError) as caught:
        spec.validate_params({"c": "zz"})
    assert str(caught.value) == (
        f"many: parameter 'c' is 'zz', not one of: {', '.join(choices[:20])} …"
    )


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("top", "0", "is 0, below the minimum 1"),
        ("top", 51, "is 51, above the maximum 50"),
        ("share", "-0.1", "is -0.1, below the minimum 0.0"),
        ("share", 1.5, "is 1.5, above the maximum 1.0"),
        ("month", "2012-12", "is '2012-12', below the minimum '2013-01'"),
        ("month", "2014-01", "is '2014-01', above the maximum '2013-12'"),
        ("day", "2012-12-31", "is '2012-12-31', below the minimum '2013-01-01'"),
        ("day", "2014-01-01", "is '2014-01-01', above the maximum '2013-12-31'"),
    ],
)
def test_out_of_range(sales, name, value, expected):
    assert param_error(sales, **{name: value}) == f"sales: parameter '{name}' {expected}"


def test_bounds_are_inclusive(sales):
    params = sales.validate_params(
        {"region": "north", "month": "2013-12", "top": 50, "share": 0, "day": "2013-12-31"}
    )
    assert (params["month"], params["top"], params["share"], params["day"]) == (
        "2013-12",
        50,
        0.0,
        "2013-12-31",
    )


def test_choices_from_uses_the_callers_lookup():
    spec = ReportSpec.model_validate(
        {
            "name": "carriers",
            "title": "C",
            "parameters": {"carrier": {"choices_from": {"table": "airlines", "column": "carrier"}}},
        }
    )
    asked = []

    def choices_of(name):
        asked.append(name)
        return ["AA", "UA"]

    assert spec.validate_params({"carrier": "UA"}, choices_of=choices_of) == {"carrier": "UA"}
    with pytest.raises(ParameterError) as caught:
        spec.validate_params({"carrier": "DL"}, choices_of=choices_of)
    assert str(caught.value) == "carriers: parameter 'carrier' is 'DL', not one of: AA, UA"
    assert asked == ["carrier", "carrier"]
    # Without a lookup (no data reachable) any string passes.
    assert spec.validate_params({"carrier": "DL"}) == {"carrier": "DL"}


def test_month_with_trailing_newline_is_rejected(sales):
    assert param_error(sales, month="2013-07\n") == (
        "sales: parameter 'month' must be a month as YYYY-MM, got '2013-07\\n'"
    )


def test_nan_is_not_a_number_within_bounds(sales):
    with pytest.raises(ParameterError, match=r"^sales: parameter 'share' "):
        sales.validate_params({**REQUIRED, "share": "nan"})


def test_date_choices_written_as_yaml_dates(write_spec):
    text = (
        "name: days\ntitle: Days\nparameters:\n"
        "  day: {type: date, default: 2013-01-01, choices: [2013-01-01, 2013-01-02]}\n"
    )
    spec = load_spec(write_spec("days", text))
    assert spec.validate_params({"day": "2013-01-02"}) == {"day": "2013-01-02"}


# --- range_values --------------------------------------------------------------------


def test_range_values_month_crosses_year():
    pspec = ParameterSpec(type="month", min="2012-11", max="2013-02")
    assert range_values(pspec) == ["2012-11", "2012-12", "2013-01", "2013-02"]


def test_range_values_full_year_of_months(sales):
    values = range_values(sales.parameters["month"])
    assert values == [f"2013-{m:02d}" for m in range(1, 13)]


def test_range_values_date_over_leap_day():
    pspec = ParameterSpec(type="date", min="2012-02-28", max="2012-03-01")
    assert range_values(pspec) == ["2012-02-28", "2012-02-29", "2012-03-01"]


def test_range_values_date_from_yaml_dates():
    pspec = ParameterSpec(type="date", min=dt.date(2013, 12, 31), max=dt.date(2014, 1, 1))
    assert range_values(pspec) == ["2013-12-31", "2014-01-01"]


def test_range_values_integer():
    assert range_values(ParameterSpec(type="integer", min=3, max="5")) == [3, 4, 5]


@pytest.mark.parametrize(
    "pspec",
    [
        ParameterSpec(type="month", min="2013-01"),
        ParameterSpec(type="integer", max=3),
        ParameterSpec(type="string", min="a", max="c"),
        ParameterSpec(type="number", min=0, max=1),
    ],
)
def test_range_values_none_without_a_countable_range(pspec):
    assert range_values(pspec) is None
