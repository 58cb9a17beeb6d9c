"""Finds report definitions: one folder per report under the catalog directory.

A folder holds `spec.yaml`, `loader.py` (with `load(params, source)` and
`build_context(data, params)`), `template.html.j2` and an optional `assets/`
folder (`assets/style.css` is applied automatically). Nothing outside the folder
needs editing to add a report.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import os
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any

from reports.errors import ParameterError, SpecError, UnknownReportError
from reports.settings import Settings, get_settings
from reports.sources import FileSource, SqlSource
from reports.spec import ReportSpec, load_spec, range_values
from reports.templating import LAYOUT_DIR

TEMPLATE = "template.html.j2"
# Engine modules that shape the outputs: a change to any of them re-renders every item.
_ENGINE_FILES = (
    "render.py",
    "pdf.py",
    "tables.py",
    "charts.py",
    "templating.py",
    "fetcher.py",
    "html_output.py",
)


@dataclass
class Report:
    """A loaded report definition: spec, loader module, template and assets."""

    spec: ReportSpec
    folder: Path
    loader: ModuleType
    settings: Settings
    _choices: dict[str, list[Any]] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def assets_dir(self) -> Path:
        return self.folder / "assets"

    @property
    def stylesheets(self) -> list[Path]:
        own = self.assets_dir / "style.css"
        return [LAYOUT_DIR / "base.css", *([own] if own.is_file() else [])]

    @property
    def allowed_roots(self) -> list[Path]:
        """Folders the PDF renderer may read: the report's assets and the shared layout."""
        return [self.assets_dir, LAYOUT_DIR]

    @cached_property
    def code_version(self) -> str:
        """Hash of everything that shapes the output except the data: a change re-renders."""
        digest = hashlib.sha256()
        files = sorted(
            p for p in self.folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts
        )
        files += sorted(LAYOUT_DIR.iterdir())
        files += [Path(__file__).with_name(name) for name in _ENGINE_FILES]
        for path in files:
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
        return digest.hexdigest()[:16]

    def source(self) -> FileSource | SqlSource:
        if self.spec.source == "sql":
            return SqlSource(self.settings.resolved_database_url)
        return FileSource(self.settings.resolved_data_dir)

    def choices(self, parameter: str) -> list[Any] | None:
        """Allowed values of a parameter: static, from the data, or None when open."""
        pspec = self.spec.parameters[parameter]
        if pspec.choices is not None:
            return list(pspec.choices)
        if pspec.choices_from is None:
            return None
        if parameter not in self._choices:
            ref = pspec.choices_from
            self._choices[parameter] = self.source().distinct(ref.table, ref.column)
        return self._choices[parameter]

    def validate(self, raw: dict[str, Any]) -> dict[str, Any]:
        return self.spec.validate_params(raw, choices_of=self.choices)

    def in_spec_order(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """`params` in the order the spec lists them (any others after): one item, one key,
        whether it came from a batch, the dashboard's form or the command line."""
        first = {name: params[name] for name in self.spec.parameters if name in params}
        return {**first, **{k: v for k, v in params.items() if k not in first}}

    def dimension_values(self, dimension: str) -> list[Any]:
        """Every value a batch may take for `dimension`: its choices or its min..max range."""
        if dimension not in self.spec.parameters:
            raise ParameterError(f"{self.name}: unknown parameter '{dimension}'")
        values = self.choices(dimension) or range_values(self.spec.parameters[dimension])
        if not values:
            raise ParameterError(
                f"{self.name}: parameter '{dimension}' has no choices or min/max range to "
                "take all values from; list them with --over"
            )
        return values

    def sample_params(self) -> dict[str, Any]:
        """Parameters for a smoke render: the loader's `SAMPLE` or defaults and first choices."""
        sample = dict(getattr(self.loader, "SAMPLE", {}))
        for name, pspec in self.spec.parameters.items():
            if name not in sample and pspec.default is None:
                values = self.choices(name) or range_values(pspec) or []
                if values:
                    sample[name] = values[0]
        return self.validate(sample)


class Catalog:
    """All report definitions in one directory, loaded on first use."""

    def __init__(self, directory: Path | None = None, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self.directory = Path(directory or self.settings.catalog_dir)
        self._reports: dict[str, Report] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return sorted(p.name for p in self.directory.iterdir() if (p / "spec.yaml").is_file())

    def get(self, name: str) -> Report:
        with self._lock:
            if name not in self._reports:
                self._reports[name] = self._load(name)
            return self._reports[name]

    def _load(self, name: str) -> Report:
        names = self.names()
        if name not in names:
            close = difflib.get_close_matches(name, names, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f"; reports: {', '.join(names)}"
            raise UnknownReportError(f"unknown report '{name}'{hint}")
        folder = self.directory / name
        check_containment(name, folder, self.directory)
        spec = load_spec(folder / "spec.yaml")
        if not (folder / TEMPLATE).is_file():
            raise SpecError(f"{folder / TEMPLATE}: template file is missing")
        return Report(
            spec=spec, folder=folder, loader=_import_loader(folder), settings=self.settings
        )


def check_containment(name: str, folder: Path, catalog_dir: Path) -> None:
    """Refuse a report whose folder, or anything in it, resolves outside the catalog.

    The fetcher only lets WeasyPrint read the report's `assets/` and the shared
    layout, and it resolves symlinks; but a symlinked folder *is* the allowed root,
    and Jinja2's loader and the spec reader follow links without asking. So the rule
    is checked once, here: the report folder lies inside the catalog folder, and no
    link inside it points out of it or the shared layout (`assets -> /etc` would make
    /etc an "asset").
    """
    root = catalog_dir.resolve()
    real = folder.resolve()
    if not real.is_relative_to(root) or real == root:
        raise SpecError(
            f"{name}: the report folder resolves to {real}, outside the catalog folder "
            f"{root}; copy the report into the catalog instead of linking it"
        )
    for parent, dirs, files in os.walk(folder):
        for entry in (*dirs, *files):
            path = Path(parent) / entry
            if not path.is_symlink():
                continue
            target = path.resolve()
            if not (target.is_relative_to(real) or target.is_relative_to(LAYOUT_DIR)):
                relative = path.relative_to(folder).as_posix()
                raise SpecError(
                    f"{name}: {relative} links to {target}, outside the report folder; "
                    "a report may only use files inside its own folder"
                )


def _import_loader(folder: Path) -> ModuleType:
    path = folder / "loader.py"
    if not path.is_file():
        raise SpecError(f"{path}: loader file is missing")
    module_name = "reportrunner_catalog." + folder.name.replace("-", "_")
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # lets the render pool unpickle functions it defines
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        del sys.modules[module_name]
        raise SpecError(f"{path} line {exc.lineno}: syntax error: {exc.msg}") from None
    except Exception as exc:
        del sys.modules[module_name]
        raise SpecError(f"{path}: import failed: {exc.__class__.__name__}: {exc}") from None
    for required in ("load", "build_context"):
        if not callable(getattr(module, required, None)):
            raise SpecError(f"{path}: must define a function '{required}'")
    return module


@lru_cache(maxsize=1)
def default_catalog() -> Catalog:
    """The catalog of the configured settings, shared within a process."""
    return Catalog()
