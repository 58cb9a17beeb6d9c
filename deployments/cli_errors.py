"""The CLI's own error type, and the check every command that needs the API makes first.

`python -m deployments.cli` runs cli.py as `__main__`: a class defined there would be a
different class from `deployments.cli.CliError` that command modules import, and its
one-line errors would escape as "unexpected" ones.
"""


class CliError(Exception):
    """An environment problem the user must fix (no Prefect API, bad flag)."""


def require_api() -> str:
    """The Prefect API URL, once the server answers and takes our credentials."""
    from prefect.settings import get_current_settings

    from deployments.prefect_server import api_ready, credentials_problem

    url = get_current_settings().api.url
    if not url:
        raise CliError(
            "PREFECT_API_URL is not set: point it at a Prefect server "
            "(e.g. export PREFECT_API_URL=http://127.0.0.1:4200/api) or run `reportrunner up`"
        )
    if not api_ready(url):
        raise CliError(f"Prefect API at {url} is unreachable: is the server running?")
    auth = get_current_settings().api.auth_string
    problem = credentials_problem(url, auth.get_secret_value() if auth else None)
    if problem:
        raise CliError(problem)
    return url
