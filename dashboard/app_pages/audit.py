"""The audit log for the ministry's analysts: who signed in, looked at, changed or exported what.

Read-only here (the dashboard can only append to the table, never change it); filters in the URL
(``?days=7&user=…&action=refused``). Reading the log is itself recorded.
"""

from __future__ import annotations

import datetime as dt

import streamlit as st

from dozor.access import Scope
from dozor.dashboard import data, queries, signin

scope = signin.manager_scope(
    "audit", Scope.require_audit, "Access refused: the audit log is for the ministry's analysts."
)

params = st.query_params
try:
    days = min(max(int(params.get("days", "7")), 1), 400)
except ValueError:
    days = 7
user = params.get("user", "")
action = params.get("action", "")
st.title("Audit log")
rows = queries.audit_log(
    data.client(), scope, dt.datetime.now(dt.UTC) - dt.timedelta(days=days), user, action
)
key = ("audit", days, user, action)
if st.session_state.get("dozor_viewed") != key:
    st.session_state["dozor_viewed"] = key
    signin.audit("view", "audit", f"days={days} user={user} action={action}", rows=len(rows), scope=scope)
st.caption(f"{len(rows)} entries in the last {days} days (newest first, at most 1000)")
st.dataframe(
    [{"at": r.at.isoformat(timespec="seconds"), "user": r.user, "role": r.role, "action": r.action,
      "page": r.page, "detail": r.detail, "rows": r.rows} for r in rows],
    hide_index=True, width="stretch",
)  # fmt: skip
