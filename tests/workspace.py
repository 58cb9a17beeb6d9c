"""Throwaway report workspaces for tests of any layer: catalogs, data and PDF text.

Loaded for the whole session by `pytest_plugins` in tests/conftest.py.

A "workspace" is a tmp folder with its own catalog, data folder and output store, so
a test can write a tiny report (spec.yaml, loader.py, template.html.j2) and render it
through the real engine without touching the project's catalog or var/ folder.
"""

from __future__ import annotations

import io
import struct
import textwrap
import zlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from pypdf import PdfReader

from reports.definitions import Catalog, Report
from reports.settings import Settings
from reports.store import OutputStore

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEMO_DATA = PROJECT_ROOT / "var" / "data"

# The engine flags a PDF with fewer than 200 characters of text as "nearly blank";
# the minimal template carries this paragraph so that check stays quiet.
FILLER = (
    "This paragraph exists so that the rendered PDF carries enough text for the "
    "engine's blank-page check: a report with only a heading would be flagged as "
    "nearly blank, which is not what these tests are about. "
) * 2

MINIMAL_SPEC = """\
name: {name}
title: Unit test report
parameters:
  region:
    type: string
    default: north
outputs: [pdf, html, csv]
quality:
  min_rows: {{items: 1}}
  on_violation: {on_violation}
pdf:
  max_table_rows: {max_table_rows}
  on_table_overflow: {on_table_overflow}
"""

MINIMAL_LOADER = """\
from reports.tables import Table


def load(params, source):
    return {"items": source.table("items", where={"region": params["region"]})}


def build_context(data, params):
    items = data["items"]
    return {
        "total": int(items["amount"].sum()),
        "items": Table("items", items, "Items", columns={"label": "Label", "amount": "Amount"}),
    }
"""

MINIMAL_TEMPLATE = """\
{% extends "base.html.j2" %}
{% block content %}
<p class="total">Total amount: {{ total | number }}</p>
<p>FILLER</p>
{{ blocks.table(items) }}
{% endblock %}
""".replace("FILLER", FILLER)

DEFAULT_ITEMS = [
    {"region": "north", "label": "Widgets", "amount": 1200},
    {"region": "north", "label": "Gadgets", "amount": 34},
    {"region": "south", "label": "Sprockets", "amount": 5},
]


def spec_text(
    name: str,
    *,
    on_violation: str = "fail",
    max_table_rows: int = 40,
    on_table_overflow: str = "truncate",
) -> str:
    return MINIMAL_SPEC.format(
        name=name,
        on_violation=on_violation,
        max_table_rows=max_table_rows,
        on_table_overflow=on_table_overflow,
    )


def write_spec(parent: Path, name: str, text: str) -> Path:
    """Write `text` as `<parent>/<name>/spec.yaml` and return its path."""
    folder = parent / name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "spec.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def pdf_reader(data: bytes) -> PdfReader:
    return PdfReader(io.BytesIO(data))


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() or "" for page in pdf_reader(data).pages)


def tiny_png(width: int = 2, height: int = 2) -> bytes:
    """A valid RGB PNG, built by hand so no imaging library is needed."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    raw = b"".join(b"\x00" + b"\xd0\x30\x30" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


@dataclass
class Workspace:
    """A tmp catalog + data folder + output folder, wired through real Settings."""

    root: Path

    @property
    def catalog_dir(self) -> Path:
        return self.root / "catalog"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def out_dir(self) -> Path:
        return self.root / "outputs"

    @property
    def settings(self) -> Settings:
        return Settings(catalog_dir=self.catalog_dir, data_dir=self.data_dir, home=self.root)

    def catalog(self) -> Catalog:
        """A fresh catalog: nothing cached from an earlier `get`."""
        return Catalog(settings=self.settings)

    def store(self) -> OutputStore:
        return OutputStore(str(self.out_dir))

    def add_report(
        self,
        name: str = "mini",
        *,
        spec: str | None = None,
        loader: str | None = MINIMAL_LOADER,
        template: str | None = MINIMAL_TEMPLATE,
        assets: dict[str, bytes | str] | None = None,
    ) -> Path:
        """Write a report folder; pass None for loader/template to leave the file out."""
        folder = self.catalog_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "spec.yaml").write_text(spec or spec_text(name), encoding="utf-8")
        if loader is not None:
            (folder / "loader.py").write_text(loader, encoding="utf-8")
        if template is not None:
            (folder / "template.html.j2").write_text(template, encoding="utf-8")
        for relative, content in (assets or {}).items():
            path = folder / "assets" / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, str):
                path.write_text(content, encoding="utf-8")
            else:
                path.write_bytes(content)
        return folder

    def write_table(self, name: str, rows: list[dict]) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        path = self.data_dir / f"{name}.csv"
        pd.DataFrame(rows).to_csv(path, index=False)
        return path

    def report(self, name: str = "mini") -> Report:
        return self.catalog().get(name)

    def files(self) -> list[Path]:
        """Every file written under the output folder."""
        if not self.out_dir.exists():
            return []
        return sorted(p for p in self.out_dir.rglob("*") if p.is_file())


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    """An empty workspace: a test adds the reports and data it needs."""
    return Workspace(tmp_path)


@pytest.fixture
def mini(ws: Workspace) -> Workspace:
    """A workspace holding the minimal report 'mini' and its `items` table."""
    ws.add_report("mini")
    ws.write_table("items", DEFAULT_ITEMS)
    return ws


class Kit:
    """The helpers above, handed to tests as the `kit` fixture.

    Test modules here are not a package, so they reach shared code through fixtures
    rather than imports (which would depend on pytest's import mode).
    """

    FILLER = FILLER
    MINIMAL_LOADER = MINIMAL_LOADER
    MINIMAL_TEMPLATE = MINIMAL_TEMPLATE
    DEFAULT_ITEMS = DEFAULT_ITEMS
    DEMO_DATA = DEMO_DATA
    spec_text = staticmethod(spec_text)
    write_spec = staticmethod(write_spec)
    pdf_reader = staticmethod(pdf_reader)
    pdf_text = staticmethod(pdf_text)
    tiny_png = staticmethod(tiny_png)


@pytest.fixture(scope="session")
def kit() -> type[Kit]:
    return Kit
