"""Sign-in logic without Streamlit: password hashes, configuration, trusted headers, roles."""

from __future__ import annotations

import io

import pytest

from dashboard.auth import (
    ANALYST,
    LOCAL_USER,
    NOBODY,
    OPERATOR,
    AuthConfigError,
    PermissionDenied,
    User,
    authenticate,
    load_settings,
    require,
    user_from_headers,
)
from dashboard.passwords import hash_password, verify_password


@pytest.fixture(scope="module")
def alice_hash() -> str:
    return hash_password("correct horse")


def test_a_hash_verifies_its_password_only(alice_hash):
    assert alice_hash.startswith("scrypt$")
    assert "correct horse" not in alice_hash
    assert verify_password("correct horse", alice_hash)
    assert not verify_password("correct horsE", alice_hash)
    assert not verify_password("", alice_hash)


def test_each_hash_has_its_own_salt():
    first, second = hash_password("same"), hash_password("same")
    assert first != second
    assert verify_password("same", first) and verify_password("same", second)


@pytest.mark.parametrize(
    "stored", ["", "plain-text", "md5$abc", "scrypt$16384$8$1$not-base64!$x", "scrypt$a$b$c$d$e"]
)
def test_malformed_hashes_never_match(stored):
    assert not verify_password("anything", stored)


def test_empty_password_cannot_be_hashed():
    with pytest.raises(ValueError):
        hash_password("")


def test_users_from_secrets_and_environment(alice_hash):
    bob_hash = hash_password("bob's")
    settings = load_settings(
        {"users": {"alice": {"password_hash": alice_hash, "role": "operator"}}},
        {"REPORTRUNNER_DASHBOARD_USERS": f"bob:analyst:{bob_hash}; "},
    )
    assert settings.mode == "password"
    assert authenticate(settings, "alice", "correct horse") == User("alice", OPERATOR)
    assert authenticate(settings, " bob ", "bob's") == User("bob", ANALYST)
    assert authenticate(settings, "alice", "bob's") is None
    assert authenticate(settings, "carol", "correct horse") is None
    assert alice_hash not in repr(settings)  # hashes stay out of logs and tracebacks


def test_nothing_configured_means_local_mode():
    settings = load_settings(None, {})
    assert settings.mode == "none"
    assert LOCAL_USER.is_operator


@pytest.mark.parametrize(
    ("secrets", "env", "expected"),
    [
        ({"users": {"eve": {"password_hash": "x", "role": "operator"}}}, {}, "password_hash"),
        ({"users": {"eve": {"password_hash": "scrypt$1", "role": "admin"}}}, {}, "role analyst"),
        (None, {"REPORTRUNNER_DASHBOARD_USERS": "eve:operator"}, "name:role:hash"),
        (None, {"REPORTRUNNER_DASHBOARD_USERS": ":analyst:scrypt$1"}, "has no name"),
    ],
)
def test_misconfiguration_is_one_line_naming_the_user(secrets, env, expected):
    with pytest.raises(AuthConfigError) as info:
        load_settings(secrets, env)
    message = str(info.value)
    assert expected in message and "\n" not in message
    assert "scrypt$1" not in message  # the hash itself is never echoed


def test_trusted_header_names_the_user_case_insensitively():
    settings = load_settings(
        None,
        {
            "REPORTRUNNER_DASHBOARD_TRUSTED_HEADER": "X-Forwarded-User",
            "REPORTRUNNER_DASHBOARD_OPERATORS": "alice, bob",
        },
    )
    assert settings.mode == "header"
    assert user_from_headers({"x-forwarded-user": "alice"}, settings) == User("alice", OPERATOR)
    assert user_from_headers({"X-FORWARDED-USER": "carol"}, settings) == User("carol", ANALYST)
    assert user_from_headers({"X-Forwarded-User": "  "}, settings) is None
    assert user_from_headers({"Host": "example"}, settings) is None


def test_role_header_wins_over_the_operator_list_and_bad_claims_fall_back():
    settings = load_settings(
        None,
        {
            "REPORTRUNNER_DASHBOARD_TRUSTED_HEADER": "X-Forwarded-User",
            "REPORTRUNNER_DASHBOARD_ROLE_HEADER": "X-Forwarded-Role",
            "REPORTRUNNER_DASHBOARD_OPERATORS": "alice",
        },
    )
    headers = {"X-Forwarded-User": "carol", "X-Forwarded-Role": "Operator"}
    assert user_from_headers(headers, settings) == User("carol", OPERATOR)
    headers = {"X-Forwarded-User": "alice", "X-Forwarded-Role": "analyst"}
    assert user_from_headers(headers, settings) == User("alice", ANALYST)
    headers = {"X-Forwarded-User": "carol", "X-Forwarded-Role": "root"}
    assert user_from_headers(headers, settings) == User("carol", ANALYST)


def test_the_header_is_ignored_unless_configured():
    settings = load_settings(None, {})
    assert user_from_headers({"X-Forwarded-User": "mallory"}, settings) is None


def test_require_checks_the_role():
    require(User("alice", OPERATOR), OPERATOR, "Cancel run")
    require(User("bob", ANALYST), ANALYST, "Run a report")
    with pytest.raises(PermissionDenied, match="Cancel run needs the operator role; bob is an"):
        require(User("bob", ANALYST), OPERATOR, "Cancel run")
    with pytest.raises(PermissionDenied, match="signed-in user"):
        require(NOBODY, ANALYST, "Run a report")


def test_cli_hash_password_reads_stdin_and_prints_a_hash(monkeypatch, capsys):
    from deployments.cli import main

    monkeypatch.setattr("sys.stdin", io.StringIO("pa ss\n"))
    assert main(["hash-password"]) == 0
    printed = capsys.readouterr().out.strip()
    assert verify_password("pa ss", printed)
    monkeypatch.setattr("sys.stdin", io.StringIO("\n"))
    assert main(["hash-password"]) == 2
    assert "password is empty" in capsys.readouterr().err
