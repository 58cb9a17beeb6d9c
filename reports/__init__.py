"""The report engine: definitions, data sources, rendering and the output store.

Plain Python with no Prefect import, so a report renders the same in a flow, in
`reportrunner render` and in the benchmark's baseline loop.
"""

from reports.definitions import Catalog, Report
from reports.errors import (
    BlockedFetchError,
    DataError,
    OutputPathError,
    ParameterError,
    QualityError,
    RenderLimitError,
    ReportError,
    SpecError,
    TemplateError,
    UnknownReportError,
)
from reports.render import render_report
from reports.settings import Settings, get_settings
from reports.store import OutputStore

__all__ = [
    "BlockedFetchError",
    "Catalog",
    "DataError",
    "OutputPathError",
    "OutputStore",
    "ParameterError",
    "QualityError",
    "RenderLimitError",
    "Report",
    "ReportError",
    "Settings",
    "SpecError",
    "TemplateError",
    "UnknownReportError",
    "get_settings",
    "render_report",
]
