"""Errors a user can cause, each with a message that names what to fix.

Every class here is a `ReportError`: the CLI and dashboard print `str(error)` as one
line and never a traceback, and the flows do not retry them (retrying cannot fix
bad input). Anything else that escapes rendering is treated as transient.

The classes keep their constructor arguments in `args` so that they survive the
pickling round-trip from a render worker process back to the flow.
"""

from __future__ import annotations


class ReportError(Exception):
    """Base class of every error caused by a report definition or its input."""

    def __init__(self, message: str) -> None:
        super().__init__(message)

    @property
    def message(self) -> str:
        return str(self.args[0])

    def __str__(self) -> str:
        return self.message


class UnknownReportError(ReportError):
    """The named report has no folder in the catalog."""


class SpecError(ReportError):
    """A report's spec.yaml or loader.py is malformed."""


class ParameterError(ReportError):
    """A parameter is unknown, missing, of the wrong type or outside its choices."""


class TemplateError(ReportError):
    """A Jinja2 template does not compile or references an undefined variable."""


class DataError(ReportError):
    """The data loader failed in a way that retrying cannot fix, or data is unreadable."""


class BlockedFetchError(ReportError):
    """The HTML asked WeasyPrint for a resource outside the report's sandbox."""


class QualityError(ReportError):
    """The quality gate rejected the output (for example: empty data) and the spec says fail."""


class OutputPathError(ReportError):
    """An output name would leave the output root."""


class RenderLimitError(ReportError):
    """A render exceeded its time or memory limit."""
