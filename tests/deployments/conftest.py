import pytest


@pytest.fixture(autouse=True)
def _server(prefect_server):
    """Every deployments test talks to the session's Prefect server."""
    return prefect_server
