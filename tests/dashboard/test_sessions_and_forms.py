"""Sign-in across tabs (the signed session cookie), pending confirmations, the run form.

The cookie's signing and checking are pure functions and two Starlette routes, tested
directly. AppTest cannot send request cookies, so the page flow swaps the one seam
that reads them (`dashboard.auth._request_cookies`) for what a new tab would send.
The browser side (the cookie really set, HttpOnly, in a new tab) is
tests/e2e/test_sign_in_across_tabs.py.
"""

from __future__ import annotations

import stat
import time
import tomllib
from pathlib import Path

import pytest
from prefect import get_client
from starlette.applications import Starlette
from starlette.testclient import TestClient
from streamlit.testing.v1 import AppTest

from dashboard import auth, forms, session
from dashboard.passwords import hash_password
from deployments.deploy import deploy

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "dashboard" / "app.py")
SECRET = "s" * 40  # a test key; the real one comes from configuration or the state folder
KEY = SECRET.encode()
PASSWORDS = {"olga": "op-pass-1", "ann": "an-pass-2"}
POOL = "sessions-test-pool"
CONFIRMATION_KEYS = (
    "run_controls_pending",
    "ops_pending",
    "overview_retry_pending",
    "runs_pending",
)


# ---- the token: signed, expiring, bound to user and role ---------------------------------


def test_a_token_carries_user_role_and_expiry_and_survives_only_intact():
    now = 1_000_000.0
    token = session.sign(KEY, "olga", "operator", 3600, now=now)
    found = session.verify(token, KEY, now=now + 10)
    assert (found.name, found.role, found.expires) == ("olga", "operator", now + 3600)
    assert found.sid and found.sid not in repr(found)
    assert session.verify(token, KEY, now=now + 3600) is None  # expired
    assert session.verify(token, b"k" * 40, now=now) is None  # another key
    payload, signature = token.rsplit(".", 1)
    other = session.sign(KEY, "ann", "analyst", 3600, now=now)
    assert session.verify(f"{other.rsplit('.', 1)[0]}.{signature}", KEY, now=now) is None
    middle = len(signature) // 2
    flipped = (
        signature[:middle] + ("A" if signature[middle] != "A" else "B") + signature[middle + 1 :]
    )
    assert session.verify(f"{payload}.{flipped}", KEY, now=now) is None  # tampered
    # The last character holds 4 bits of the signature and 2 that base64 ignores: every
    # other spelling of it is refused too, whatever those bits are.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for last in alphabet.replace(signature[-1], ""):
        assert session.verify(f"{payload}.{signature[:-1]}{last}", KEY, now=now) is None, last
    for junk in (None, "", "x", "a.b.c", "." * 5000):
        assert session.verify(junk, KEY, now=now) is None


def test_a_revoked_session_is_refused(tmp_path):
    revocations = session.Revocations()
    revocations.use(tmp_path)
    token = session.sign(KEY, "olga", "operator", 3600)
    found = session.verify(token, KEY)
    revocations.revoke(found)
    assert revocations.is_revoked(found.sid)
    again = session.Revocations()  # a restarted dashboard reads the list back
    again.use(tmp_path)
    assert again.is_revoked(found.sid)
    stored = next((tmp_path / "dashboard").glob("revoked-*"))
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert token not in stored.read_text()  # only ids, never a token


def test_the_key_comes_from_configuration_or_a_private_file(tmp_path):
    assert session.signing_key(SECRET, tmp_path) == KEY
    with pytest.raises(session.SessionConfigError) as short:
        session.signing_key("too-short", tmp_path)
    assert "too-short" not in str(short.value)
    made = session.signing_key(None, tmp_path / "a")
    assert session.signing_key(None, tmp_path / "a") == made  # made once, then reused
    assert session.signing_key(None, tmp_path / "b") != made  # never a constant
    key_file = tmp_path / "a" / "dashboard" / "session.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and len(made) >= 32
    key_file.chmod(0o644)
    with pytest.raises(session.SessionConfigError) as loose:
        session.signing_key(None, tmp_path / "a")
    assert "read by others" in str(loose.value) and made.decode() not in str(loose.value)


def test_the_lifetime_is_configurable():
    assert session.lifetime_s({}) == 8 * 3600
    assert session.lifetime_s({session.HOURS_ENV: "0.5"}) == 1800
    for bad in ("soon", "0", "-1", "100000"):
        with pytest.raises(session.SessionConfigError):
            session.lifetime_s({session.HOURS_ENV: bad})


# ---- the routes that set and delete the HttpOnly cookie -----------------------------------


@pytest.fixture
def routes_client() -> TestClient:
    app = Starlette(routes=session.routes("", lambda: KEY, lambda: 3600.0))
    return TestClient(app, base_url="http://dash.test")


SAME_ORIGIN = {"Origin": "http://dash.test"}


def test_a_grant_becomes_an_httponly_strict_cookie_once(routes_client):
    token = session.sign(KEY, "olga", "operator", 3600)
    grant = session.issue_grant(token)
    answer = routes_client.post(session.session_path(), content=grant, headers=SAME_ORIGIN)
    assert answer.status_code == 204
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{session.COOKIE}={token};")
    attributes = {a.strip().lower() for a in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/", "max-age=3600"} <= attributes
    assert "secure" not in attributes  # plain http here; see the https test
    again = routes_client.post(session.session_path(), content=grant, headers=SAME_ORIGIN)
    assert again.status_code == 403  # single use


def test_the_cookie_is_secure_over_https_and_routes_refuse_other_sites(routes_client):
    token = session.sign(KEY, "olga", "operator", 3600)
    behind_tls = {**SAME_ORIGIN, "X-Forwarded-Proto": "https"}
    answer = routes_client.post(
        session.session_path(), content=session.issue_grant(token), headers=behind_tls
    )
    assert "secure" in answer.headers["set-cookie"].lower()
    grant = session.issue_grant(token)
    for headers in (
        {"Origin": "http://evil.test"},
        {},
        {**SAME_ORIGIN, "Sec-Fetch-Site": "cross-site"},
    ):
        answer = routes_client.post(session.session_path(), content=grant, headers=headers)
        assert answer.status_code == 403 and "set-cookie" not in answer.headers
    assert session.redeem_grant("not-a-grant") is None


def test_an_old_grant_is_refused():
    grant = session.issue_grant("token", now=time.time() - session.GRANT_TTL_S - 1)
    assert session.redeem_grant(grant) is None


def test_sign_out_route_deletes_the_cookie_and_revokes_it(routes_client):
    token = session.sign(KEY, "olga", "operator", 3600)
    routes_client.cookies.set(session.COOKIE, token)
    answer = routes_client.post(session.sign_out_path(), headers=SAME_ORIGIN)
    assert answer.status_code == 204
    cookie = answer.headers["set-cookie"].lower()
    assert cookie.startswith(f"{session.COOKIE}=") and "max-age=0" in cookie
    assert session.verify(token, KEY) is None  # a copy of the cookie is dead too


# ---- the page: a new tab with the cookie is signed in; sign-out ends it everywhere ---------


@pytest.fixture
def users(monkeypatch) -> dict[str, str]:
    hashes = {name: hash_password(password) for name, password in PASSWORDS.items()}
    monkeypatch.setenv(
        auth.USERS_ENV, f"olga:operator:{hashes['olga']};ann:analyst:{hashes['ann']}"
    )
    monkeypatch.setenv(session.SECRET_ENV, SECRET)
    return hashes


@pytest.fixture
def browser_cookies(monkeypatch) -> dict[str, str]:
    """What the next tab's request carries; AppTest itself cannot send cookies."""
    jar: dict[str, str] = {}
    monkeypatch.setattr(auth, "_request_cookies", lambda: dict(jar))
    return jar


def _tab() -> AppTest:
    return AppTest.from_file(APP, default_timeout=90).run()


def _sign_in(at: AppTest, name: str) -> AppTest:
    at.text_input(key="sign_in_name").input(name)
    at.text_input(key="sign_in_password").input(PASSWORDS[name])
    return at.button[0].click().run()


def _signed_in_as(at: AppTest) -> str | None:
    for caption in at.sidebar.caption:
        if str(caption.value).startswith("👤 Signed in as"):
            return str(caption.value)
    return None


def test_a_new_tab_with_the_cookie_is_signed_in(users, browser_cookies):
    first = _tab()
    assert [t.value for t in first.title] == ["Sign in"]
    _sign_in(first, "olga")
    assert _signed_in_as(first) == "👤 Signed in as **olga** (operator)"
    # The page hands the cookie route a one-time grant; it is the only script it runs.
    scripts = [h.proto.body for h in first.get("html")]
    assert len(scripts) == 1 and session.session_path() in scripts[0]
    assert "reportrunner_session" not in scripts[0]  # the token itself never reaches JS
    grant = scripts[0].split('body: "')[1].split('"')[0]
    token = session.redeem_grant(grant)
    assert session.verify(token, KEY).name == "olga"

    browser_cookies[session.COOKIE] = token  # what a new tab or a reload sends
    second = _tab()
    assert not second.exception
    assert _signed_in_as(second) == "👤 Signed in as **olga** (operator)"
    assert [t.value for t in second.title] == ["Overview"]

    second.button(key="sign_out").click().run()
    assert [t.value for t in second.title] == ["Sign in"]
    scripts = [h.proto.body for h in second.get("html")]
    assert len(scripts) == 1 and session.sign_out_path() in scripts[0]  # drops the cookie
    third = _tab()  # even if the browser kept the cookie, it is revoked
    assert [t.value for t in third.title] == ["Sign in"]
    first.run()  # the first tab's own sign-in ended too
    assert [t.value for t in first.title] == ["Sign in"]


@pytest.mark.parametrize(
    ("name", "role", "lifetime", "key"),
    [
        ("olga", "analyst", 3600, KEY),  # the role is not the configured one
        ("mallory", "operator", 3600, KEY),  # not a configured user
        ("olga", "operator", -1, KEY),  # expired
        ("olga", "operator", 3600, b"x" * 40),  # signed with another key
    ],
)
def test_a_cookie_that_does_not_fit_is_refused(users, browser_cookies, name, role, lifetime, key):
    browser_cookies[session.COOKIE] = session.sign(key, name, role, lifetime)
    at = _tab()
    assert not at.exception
    assert [t.value for t in at.title] == ["Sign in"] and _signed_in_as(at) is None


# ---- pending confirmations belong to the user who asked ----------------------------------


@pytest.fixture
def pool(prefect_server):
    from prefect.client.schemas.actions import WorkPoolCreate

    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name=POOL, type="process"), overwrite=True)
    yield POOL
    with get_client(sync_client=True) as client:
        client.delete_work_pool(POOL)


def test_a_pending_confirmation_does_not_survive_sign_out(users, browser_cookies, pool):
    at = _tab()
    _sign_in(at, "olga")
    at.switch_page("views/operations.py").run()
    at.button(key=f"pool_toggle_{pool}").click().run()
    assert [w.value for w in at.warning] == [f"Pause work pool '{pool}'?"]
    for key in CONFIRMATION_KEYS:  # as if olga had asked on every page
        at.session_state[key] = auth.Pending("olga", ("x", "retry"))
    at.button(key="sign_out").click().run()
    _sign_in(at, "ann")
    at.switch_page("views/operations.py").run()
    assert not at.exception
    assert not at.warning and "ops_confirm" not in [b.key for b in at.button]
    assert not [k for k in CONFIRMATION_KEYS if k in at.session_state]
    with get_client(sync_client=True) as client:
        assert not client.read_work_pool(pool).is_paused


def test_another_users_confirmation_never_shows(users, browser_cookies, pool):
    at = _tab()
    _sign_in(at, "ann")
    at.switch_page("views/operations.py").run()
    question = {"kind": "pool", "args": {"name": pool, "paused": True}, "question": "Pause?"}
    at.session_state["ops_pending"] = auth.Pending("olga", question)  # someone else's
    at.run()
    assert not at.warning and "ops_confirm" not in [b.key for b in at.button]
    at.session_state["ops_pending"] = question  # not made by `auth.ask`: not trusted either
    at.run()
    assert not at.warning and "ops_confirm" not in [b.key for b in at.button]


# ---- the run form: messages under the field, always about the current value ---------------


@pytest.fixture(scope="module")
def deployed(prefect_server) -> None:
    deploy()


def _form(report: str) -> AppTest:
    at = _tab()
    at.switch_page("views/launch.py").run()
    at.selectbox(key="launch_report").set_value(report).run()
    return at


def _messages(at: AppTest) -> list[str]:
    return [str(e.value) for e in at.error]


def test_the_month_is_checked_on_the_server_and_the_message_follows_the_value(deployed):
    at = _form("carrier-monthly")
    month = at.text_input(key="launch:carrier-monthly:single:month")
    # No browser-side pattern: it kept invalid values from the server, so the field only
    # turned red (hint on hover) and the last valid value's message stayed.
    assert not month.proto.validate_regex and not month.proto.validate_message
    month.input("2013-13").run()
    assert _messages(at) == [
        "carrier-monthly: parameter 'month' must be a month as YYYY-MM, got '2013-13'"
    ]
    month.input("2014-01").run()
    assert _messages(at) == [
        "carrier-monthly: parameter 'month' is '2014-01', above the maximum '2013-12'"
    ]
    month.input("2014-1").run()
    assert _messages(at) == [
        "carrier-monthly: parameter 'month' must be a month as YYYY-MM, got '2014-1'"
    ]
    month.input("2013-07").run()
    assert not _messages(at)


def test_a_typed_date_is_a_text_field_that_commits_on_blur(deployed):
    at = _form("airport-daily")
    assert not at.date_input  # date_input did not commit a typed date on Tab
    date = at.text_input(key="launch:airport-daily:single:date")
    assert date.placeholder == "YYYY-MM-DD" and not date.proto.validate_regex
    date.input("2013-07-04").run()
    assert not _messages(at)
    assert "date" not in " ".join(str(c.value) for c in at.caption if "fill in" in str(c.value))
    date.input("2014-01-01").run()
    assert _messages(at) == [
        "airport-daily: parameter 'date' is '2014-01-01', above the maximum '2013-12-31'"
    ]
    date.input("20130704").run()
    assert _messages(at) == [
        "airport-daily: parameter 'date' must be a date as YYYY-MM-DD, got '20130704'"
    ]


def test_date_values_become_the_flow_parameter():
    field = forms.Field("r", "date", "date", True, minimum="2013-01-01", maximum="2013-12-31")
    assert forms.parameter_value(field, " 2013-07-04 ") == "2013-07-04"
    assert forms.parameter_value(field, "  ") is None
    assert forms.check(field, "2013-02-30").message.endswith("got '2013-02-30'")


# ---- the developer toolbar ----------------------------------------------------------------


def test_the_developer_toolbar_is_hidden():
    from streamlit import config

    assert "client.toolbarMode" in config.get_config_options()  # the option exists in 1.67
    settings = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert settings["client"]["toolbarMode"] == "viewer"
