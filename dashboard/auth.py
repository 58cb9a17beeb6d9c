"""Who is using the dashboard, and what they may do.

Roles: an analyst views and triggers runs; an operator may also use the controls.
Sign-in is configured one of three ways (the first that is set wins):

- a trusted header set by a reverse proxy that already signed the user in:
  REPORTRUNNER_DASHBOARD_TRUSTED_HEADER=X-Forwarded-User, the role from
  REPORTRUNNER_DASHBOARD_ROLE_HEADER (a header whose value is analyst/operator) or
  the names in REPORTRUNNER_DASHBOARD_OPERATORS=alice,bob (everyone else: analyst);
- users with salted scrypt password hashes (`reportrunner hash-password`), from
  Streamlit secrets `[auth.users.<name>] password_hash=…, role=…` or the
  environment REPORTRUNNER_DASHBOARD_USERS=name:role:hash;name:role:hash;
- nothing: the dashboard listens on 127.0.0.1 only and the one local user is an operator.

A password sign-in holds across tabs and reloads through a signed, expiring, HttpOnly
cookie (`dashboard.session`: REPORTRUNNER_DASHBOARD_SECRET, ..._SESSION_HOURS); "Sign
out" revokes it. Pending confirmations (`ask`/`pending`) belong to the user who asked
and are dropped whenever the tab's user changes.

Password hashes never leave this module: not in reprs, messages, logs or events.
Streamlit is imported only where a page needs it, so the action layer and the CLI
use the rest without it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dashboard import session
from dashboard.passwords import DUMMY_HASH, is_password_hash, verify_password

ANALYST = "analyst"
OPERATOR = "operator"
ROLES = (ANALYST, OPERATOR)

USERS_ENV = "REPORTRUNNER_DASHBOARD_USERS"
TRUSTED_HEADER_ENV = "REPORTRUNNER_DASHBOARD_TRUSTED_HEADER"
ROLE_HEADER_ENV = "REPORTRUNNER_DASHBOARD_ROLE_HEADER"
OPERATORS_ENV = "REPORTRUNNER_DASHBOARD_OPERATORS"
SIGN_IN_FAILED = "Unknown user or wrong password"

_USER = "auth_user"
_SESSION = "auth_session"  # the tab's verified session (name, role, id, expiry)
_GRANT = "auth_cookie_grant"  # a one-time grant the next run hands to the cookie route
_CLEAR_COOKIE = "auth_clear_cookie"  # signed out: the next run asks the route to drop it


@dataclass(frozen=True)
class User:
    name: str
    role: str

    @property
    def is_operator(self) -> bool:
        return self.role == OPERATOR


LOCAL_USER = User(name="local", role=OPERATOR)
NOBODY = User(name="nobody", role="none")  # not signed in: may do nothing


class PermissionDenied(Exception):
    """An action needs a role the user does not have; the message is one line."""


class AuthConfigError(Exception):
    """Sign-in is configured wrongly; the message is one line and holds no secret."""


def require(user: User, role: str, action: str) -> None:
    """Enforced in the code path of every action: a hidden button is not a permission."""
    if role == OPERATOR and not user.is_operator:
        raise PermissionDenied(f"{action} needs the operator role; {user.name} is an {user.role}")
    if user.role not in ROLES:
        raise PermissionDenied(f"{action} needs a signed-in user")


# ---- configuration ----------------------------------------------------------------------


@dataclass(frozen=True)
class AuthSettings:
    hashes: dict[str, str] = field(default_factory=dict, repr=False)  # name → hash
    roles: dict[str, str] = field(default_factory=dict)  # name → role
    trusted_header: str | None = None
    role_header: str | None = None
    operators: frozenset[str] = frozenset()

    @property
    def mode(self) -> str:
        """'header', 'password' or 'none'."""
        if self.trusted_header:
            return "header"
        return "password" if self.hashes else "none"


def load_settings(
    secrets_section: Mapping[str, Any] | None, env: Mapping[str, str] | None = None
) -> AuthSettings:
    """Sign-in settings from the `[auth]` secrets section and the environment."""
    env = os.environ if env is None else env
    hashes: dict[str, str] = {}
    roles: dict[str, str] = {}
    users = (secrets_section or {}).get("users") or {}
    for name, entry in users.items():
        entry = entry if isinstance(entry, Mapping) else {}
        _add_user(
            hashes,
            roles,
            str(name),
            entry.get("role"),
            entry.get("password_hash"),
            f"secrets [auth.users.{name}]",
        )
    for chunk in (env.get(USERS_ENV) or "").split(";"):
        if not chunk.strip():
            continue
        parts = chunk.strip().split(":")
        if len(parts) != 3:
            raise AuthConfigError(f"{USERS_ENV}: each entry must be name:role:hash")
        _add_user(hashes, roles, parts[0].strip(), parts[1].strip(), parts[2].strip(), USERS_ENV)
    return AuthSettings(
        hashes=hashes,
        roles=roles,
        trusted_header=(env.get(TRUSTED_HEADER_ENV) or "").strip() or None,
        role_header=(env.get(ROLE_HEADER_ENV) or "").strip() or None,
        operators=frozenset(
            n.strip() for n in (env.get(OPERATORS_ENV) or "").split(",") if n.strip()
        ),
    )


def _add_user(
    hashes: dict[str, str], roles: dict[str, str], name: str, role: Any, hashed: Any, where: str
) -> None:
    if not name:
        raise AuthConfigError(f"{where}: a user has no name")
    if role not in ROLES:
        raise AuthConfigError(f"{where}: user '{name}' needs role analyst or operator")
    if not is_password_hash(hashed):
        raise AuthConfigError(
            f"{where}: user '{name}' needs a password_hash from `reportrunner hash-password`"
        )
    hashes[name] = hashed
    roles[name] = role


def authenticate(settings: AuthSettings, name: str, password: str) -> User | None:
    """The user when name and password match; None otherwise, in about the same time."""
    name = name.strip()
    stored = settings.hashes.get(name)
    matched = verify_password(password, stored or DUMMY_HASH)
    return User(name=name, role=settings.roles[name]) if matched and stored else None


def user_from_headers(headers: Mapping[str, str], settings: AuthSettings) -> User | None:
    """The user a trusted reverse proxy names in its headers; None when it names nobody."""
    if not settings.trusted_header:
        return None
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    name = lowered.get(settings.trusted_header.lower(), "").strip()
    if not name:
        return None
    role = ANALYST
    claimed = (
        lowered.get(settings.role_header.lower(), "").strip().lower()
        if (settings.role_header)
        else ""
    )
    if claimed in ROLES:
        role = claimed
    elif name in settings.operators:
        role = OPERATOR
    return User(name=name, role=role)


# ---- Streamlit: the session's user, the sign-in gate ------------------------------------


def current_user() -> User:
    """The signed-in user of this session (the local operator when sign-in is off)."""
    import streamlit as st

    return st.session_state.get(_USER) or NOBODY


def sign_in_gate() -> tuple[User, str]:
    """Who this session is, and by which mode; stops the page until someone signs in.

    With passwords, a tab is signed in by its own form or by the signed session cookie
    (`dashboard.session`) another tab's sign-in left in the browser.
    """
    import streamlit as st

    try:
        settings = load_settings(_secrets_section())
        key = session_key() if settings.mode == "password" else b""
    except (AuthConfigError, session.SessionConfigError) as exc:
        st.error(f"Sign-in is misconfigured: {exc}", icon="⚠️")
        st.stop()
    if settings.mode == "none":
        _set_user(LOCAL_USER)
        return LOCAL_USER, "none"
    if settings.mode == "header":
        user = user_from_headers(st.context.headers, settings)
        if user is None:
            _set_user(None)
            st.error(
                f"Sign-in is done by the reverse proxy, but this request has no "
                f"{settings.trusted_header} header.",
                icon="🔒",
            )
            st.stop()
        _set_user(user)
        return user, "header"
    user = _password_user(settings, key)
    if user is not None:
        _deliver_cookie()
        return user, "password"
    _sign_in_form(settings, key)
    st.stop()


def _password_user(settings: AuthSettings, key: bytes) -> User | None:
    """This tab's user: its own sign-in while valid, else the browser's session cookie."""
    import streamlit as st

    user = st.session_state.get(_USER)
    mine: session.Session | None = st.session_state.get(_SESSION)
    signed_here = isinstance(user, User) and user.name in settings.hashes
    if signed_here and (mine is None or _still_valid(mine)):
        user = User(name=user.name, role=settings.roles[user.name])  # roles may change
        _set_user(user)
        return user
    found = session.verify(_request_cookies().get(session.COOKIE), key)
    if found is not None and settings.roles.get(found.name) == found.role:
        user = User(name=found.name, role=found.role)  # the role is bound to the cookie
        _set_user(user, found)
        return user
    _set_user(None)  # signed out elsewhere, expired, or never signed in
    return None


def _still_valid(mine: session.Session) -> bool:
    return mine.expires > time.time() and not session.revocations.is_revoked(mine.sid)


def _set_user(user: User | None, signed: session.Session | None = None) -> None:
    """The one place a tab's user changes: another user never sees a pending question."""
    import streamlit as st

    before = st.session_state.get(_USER)
    if user is None or not isinstance(before, User) or before.name != user.name:
        forget_confirmations()
    if user is None:
        st.session_state.pop(_USER, None)
        st.session_state.pop(_SESSION, None)
        return
    st.session_state[_USER] = user
    if signed is not None:
        st.session_state[_SESSION] = signed


def _sign_in_form(settings: AuthSettings, key: bytes) -> None:
    import streamlit as st

    if st.session_state.pop(_CLEAR_COOKIE, False):  # the sign-out of the run before
        _run_in_page(session.post_script(session.sign_out_path(_base_url())))
    st.title("Sign in")
    with st.form("sign_in"):
        name = st.text_input("User", key="sign_in_name", help="Your dashboard user name.")
        password = st.text_input(
            "Password", type="password", key="sign_in_password", help="Your dashboard password."
        )
        submitted = st.form_submit_button("Sign in", help="Check the name and password.")
    if submitted:
        user = authenticate(settings, name, password)
        if user is None:
            st.error(SIGN_IN_FAILED)
            return
        token = session.sign(key, user.name, user.role, session.lifetime_s())
        _set_user(user, session.verify(token, key))
        st.session_state[_GRANT] = session.issue_grant(token)
        st.rerun()


def _deliver_cookie() -> None:
    """After a sign-in, let the page swap its one-time grant for the HttpOnly cookie."""
    import streamlit as st

    grant = st.session_state.pop(_GRANT, None)
    if grant:
        _run_in_page(session.post_script(session.session_path(_base_url()), grant))


def sign_out_button() -> None:
    import streamlit as st

    if st.button("Sign out", key="sign_out", help="End the sign-in in every tab."):
        sign_out()
        st.rerun()


def sign_out() -> None:
    """Revoke this tab's session and the cookie it came with; the page then drops the cookie."""
    import streamlit as st

    try:
        key = session_key()
    except session.SessionConfigError:
        key = None
    ended = [st.session_state.get(_SESSION)]
    if key is not None:
        ended.append(session.verify(_request_cookies().get(session.COOKIE), key))
    for found in ended:
        if isinstance(found, session.Session):
            session.revocations.revoke(found)
    _set_user(None)
    st.session_state.pop(_GRANT, None)
    st.session_state[_CLEAR_COOKIE] = True


# ---- pending confirmations: asked by one user, shown to that user only -------------------


@dataclass(frozen=True)
class Pending:
    """A question awaiting "Confirm", and the user who asked it."""

    owner: str
    value: Any


def ask(key: str, value: Any) -> None:
    """Keep a pending confirmation under `key` for the signed-in user."""
    import streamlit as st

    st.session_state[key] = Pending(current_user().name, value)


def pending(key: str) -> Any:
    """The pending confirmation under `key`, if the signed-in user asked it; else None."""
    import streamlit as st

    found = st.session_state.get(key)
    if isinstance(found, Pending) and found.owner == current_user().name:
        return found.value
    if found is not None:
        st.session_state.pop(key, None)  # someone else's, or not made by `ask`
    return None


def forget(key: str) -> None:
    import streamlit as st

    st.session_state.pop(key, None)


def forget_confirmations() -> None:
    """Drop every pending confirmation of this tab (on sign-out and change of user)."""
    import streamlit as st

    for key in list(st.session_state.keys()):
        if isinstance(st.session_state.get(key), Pending):
            st.session_state.pop(key, None)


# ---- seams: the request's cookies, the key, the page script ------------------------------


def _request_cookies() -> Mapping[str, str]:
    """The cookies of the request that opened this tab (AppTest cannot send any)."""
    import streamlit as st

    return st.context.cookies


def session_key() -> bytes:
    """The signing key: Streamlit secrets, the environment, or the state folder's key file."""
    from reports.settings import get_settings

    configured = (_secrets_section() or {}).get("session_secret") or os.environ.get(
        session.SECRET_ENV
    )
    return session.key_for(str(configured) if configured else None, get_settings().home)


def _base_url() -> str:
    import streamlit as st

    return str(st.get_option("server.baseUrlPath") or "")


def _run_in_page(script: str) -> None:
    import streamlit as st

    with st.sidebar:  # out of the page's flow; the script only calls a same-origin route
        st.html(script, unsafe_allow_javascript=True)


def _secrets_section() -> Mapping[str, Any] | None:
    """The `[auth]` table of Streamlit secrets; None when there is no secrets file."""
    import streamlit as st

    try:
        section = st.secrets.get("auth")
    except Exception:  # no secrets.toml anywhere: Streamlit raises on first access
        return None
    return _plain(section) if section is not None else None


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value
