"""reportrunner dashboard: `streamlit run dashboard/app.py` (`reportrunner up` starts it).

Everything shown comes from the Prefect API at PREFECT_API_URL through
`dashboard.api`; the pages live in `dashboard/views/`.

This file has two roles. Streamlit runs it as the page script (`__name__ ==
"__main__"`, in the browser session and in AppTest). And because it assigns
`app = st.App(...)`, `streamlit run` serves it as an ASGI app (Streamlit 1.67's
public `st.App`), which mounts the two routes that set and delete the HttpOnly
session cookie: a script cannot set response headers itself (`dashboard.session`).
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:  # `streamlit run` puts only dashboard/ on the path
    sys.path.insert(0, str(_ROOT))

import streamlit as st  # noqa: E402

from dashboard import auth, controls, session  # noqa: E402

_LOCAL = {"127.0.0.1", "localhost", "::1"}


def _page() -> None:
    st.set_page_config(page_title="reportrunner", page_icon="📄", layout="wide")
    navigation = st.navigation(
        [
            st.Page("views/overview.py", title="Overview", icon="📊", default=True),
            st.Page("views/items.py", title="Items", icon="🔍", url_path="items"),
            st.Page("views/batch.py", title="Batch", icon="🧮", url_path="batch"),
            st.Page("views/item.py", title="Item detail", icon="🧾", url_path="item"),
            st.Page("views/runs.py", title="Runs", icon="📋", url_path="runs"),
            st.Page("views/run_detail.py", title="Run detail", icon="🔎", url_path="run"),
            st.Page("views/launch.py", title="Run a report", icon="▶️", url_path="launch"),
            st.Page("views/outputs.py", title="Outputs", icon="📄", url_path="outputs"),
            st.Page("views/deliveries.py", title="Deliveries", icon="📬", url_path="deliveries"),
            st.Page("views/operations.py", title="Operations", icon="🛠️", url_path="operations"),
        ]
    )
    user, mode = auth.sign_in_gate()  # stops here until someone has signed in
    controls.sidebar()
    with st.sidebar:
        address = st.get_option("server.address")
        st.caption(f"👤 Signed in as **{user.name}** ({user.role})")
        if mode == "password":
            auth.sign_out_button()
        if mode == "none" and address in _LOCAL:
            st.caption(
                f"🔒 No sign-in is configured: the dashboard listens on {address} only, "
                "so only this machine can open it."
            )
        elif mode == "none":
            st.warning(
                "No sign-in is configured, yet the dashboard may listen on every network "
                "interface. Start it with `reportrunner up` or `--server.address 127.0.0.1`.",
                icon="⚠️",
            )
    navigation.run()


if __name__ == "__main__":
    _page()
else:  # imported by `streamlit run` as the ASGI app that serves the page script
    app = st.App(
        __file__,
        routes=session.routes(
            st.get_option("server.baseUrlPath"), auth.session_key, session.lifetime_s
        ),
    )
