"""The CLI's own error type, in a module of its own.

`python -m deployments.cli` runs cli.py as `__main__`: a class defined there would be a
different class from `deployments.cli.CliError` that command modules import, and its
one-line errors would escape as "unexpected" ones.
"""


class CliError(Exception):
    """An environment problem the user must fix (no Prefect API, bad flag)."""
