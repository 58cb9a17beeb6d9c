"""Who is using the dashboard, and what they may do.

Roles: an analyst views and triggers runs; an operator may also use the controls.
Without sign-in configured the dashboard listens on 127.0.0.1 only, and the one
local user is an operator.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

ANALYST = "analyst"
OPERATOR = "operator"
ROLES = (ANALYST, OPERATOR)
_USER = "auth_user"


@dataclass(frozen=True)
class User:
    name: str
    role: str

    @property
    def is_operator(self) -> bool:
        return self.role == OPERATOR


LOCAL_USER = User(name="local", role=OPERATOR)


class PermissionDenied(Exception):
    """An action needs a role the user does not have; the message is one line."""


def current_user() -> User:
    """The signed-in user of this session."""
    return st.session_state.get(_USER) or LOCAL_USER


def require(user: User, role: str, action: str) -> None:
    """Enforced in the script before every action: a hidden button is not a permission."""
    if role == OPERATOR and not user.is_operator:
        raise PermissionDenied(f"{action} needs the operator role; {user.name} is an {user.role}")
