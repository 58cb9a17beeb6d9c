"""The Prefect access layer without a server: an httpx MockTransport answers instead.

Query logic (what `status` concludes, how many calls it costs) and the safety of what
it prints (one line, no secrets) are checked here in milliseconds; the integration
tests ask a real server the same questions.
"""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime

import httpx
import pytest

from deployments.status import collect_status, exit_code
from prefect_api import AUTH_HINT, ApiConfig, ApiUnavailable, connect, late_runs

NOW = datetime.now(UTC).isoformat()
AUTH = "ops:hunter2-secret"


class FakeServer:
    """Answers the few endpoints the queries use; records what was asked."""

    def __init__(self, *, pools=(), queues=(), workers=(), late=0, failed=0, status=200):
        self.pools, self.queues, self.workers = list(pools), list(queues), list(workers)
        self.counts = [late, failed]  # the late count is asked first, then the failed one
        self.status = status
        self.asked: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/api")
        self.asked.append(f"{request.method} {path}")
        if self.status != 200:
            return httpx.Response(self.status, json={"detail": "no"})
        answers = {
            "/health": True,
            "/csrf-token": {"token": "t", "client": "c", "expiration": "2999-01-01T00:00:00Z"},
            "/work_pools/filter": self.pools,
            "/work_queues/filter": self.queues,
            "/flow_runs/filter": [],
            "/flows/filter": [],
        }
        if path == "/flow_runs/count":
            return httpx.Response(200, json=self.counts.pop(0) if self.counts else 0)
        if path.endswith("/workers/filter"):
            return httpx.Response(200, json=self.workers)
        return httpx.Response(200, json=answers[path])

    def config(self, **options) -> ApiConfig:
        return ApiConfig(
            url="http://prefect.test/api", transport=httpx.MockTransport(self), **options
        )


def pool(name="reports", paused=False, status="READY") -> dict:
    return {"id": str(uuid.uuid4()), "name": name, "type": "process", "is_paused": paused,
            "status": status, "created": NOW, "updated": NOW}  # fmt: skip


def queue(name, pool_name="reports", paused=False) -> dict:
    return {"id": str(uuid.uuid4()), "name": name, "work_pool_name": pool_name,
            "work_pool_id": str(uuid.uuid4()), "is_paused": paused, "priority": 1,
            "created": NOW, "updated": NOW}  # fmt: skip


def worker(name="w1", status="ONLINE") -> dict:
    return {"id": str(uuid.uuid4()), "name": name, "work_pool_id": str(uuid.uuid4()),
            "status": status, "last_heartbeat_time": NOW,
            "created": NOW, "updated": NOW}  # fmt: skip


def test_a_healthy_server_has_no_problems():
    server = FakeServer(pools=[pool()], queues=[queue("adhoc")], workers=[worker()])
    report = collect_status(config=server.config())
    assert report.ok and exit_code(report) == 0, report.problems
    assert report.pools[0].online_workers == 1
    assert [q.name for q in report.pools[0].queues] == ["adhoc"]


def test_problems_name_what_needs_attention():
    server = FakeServer(
        pools=[pool(status="NOT_READY"), pool("paused-pool", paused=True, status="PAUSED")],
        queues=[queue("chunks", paused=True)],
        late=2,
        failed=1,
    )
    report = collect_status(config=server.config())
    assert exit_code(report) == 1
    assert report.problems == [
        "work pool 'paused-pool' is PAUSED: none of its runs will start; it has no online worker",
        "work pool 'reports' is NOT_READY: no online worker",
        "work queue 'chunks' of pool 'reports' is PAUSED",
        "2 flow runs are late",
        "1 flow run failed or crashed in the last 60 min",
    ]


def test_a_status_check_costs_a_bounded_number_of_calls_whatever_the_history():
    server = FakeServer(pools=[pool(), pool("other")], late=5000, failed=70000)
    collect_status(config=server.config())
    assert len(server.asked) <= 9 + 2, server.asked  # see deployments/status.py


def test_a_refused_credential_is_one_line_without_the_secret():
    server = FakeServer(status=401)
    report = collect_status(config=server.config(auth_string=AUTH))
    assert exit_code(report) == 2
    (problem,) = report.problems
    assert "\n" not in problem and AUTH_HINT in problem
    assert "hunter2" not in problem + str(report.as_dict())


def test_queries_raise_one_line_api_unavailable():
    server = FakeServer(status=500)
    with (
        pytest.raises(ApiUnavailable) as failed,
        connect(server.config()) as api,
        api.guard("late runs"),
    ):
        late_runs(api, datetime.now(UTC))
    # The client asks for a CSRF token before its first POST: that is what failed first.
    assert str(failed.value) == (
        "Prefect API at http://prefect.test/api failed while reading late runs: "
        "GET /api/csrf-token answered HTTP 500"
    )


def test_redaction_removes_every_form_of_a_secret():
    config = ApiConfig(url="http://ops:pw-in-url@prefect.test/api?token=tk", auth_string=AUTH)
    text = f"{config.url} {AUTH} {base64.b64encode(AUTH.encode()).decode()} pw-in-url"
    redacted = config.redact(text)
    assert "pw-in-url" not in redacted and "hunter2" not in redacted and "tk" not in redacted
    assert config.safe_url == "http://prefect.test/api"
