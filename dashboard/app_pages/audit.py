"""The audit log for the ministry's analysts: who signed in, looked at, changed or exported what.

Read-only here (the dashboard can only append to the table, never change it). Filters — days,
user, action, page — are widgets kept in the URL (``?days=7&user=…&action=refused``), so a finding
is a link; times are local (Kazakhstan's, as on every other page). Reading the log is recorded.
"""

from __future__ import annotations

import datetime as dt

import streamlit as st

from dozor import localtime
from dozor.access import Scope
from dozor.dashboard import data, queries, signin, view
from dozor.dashboard.i18n import t

scope, lang = view.open_plain_page("audit", Scope.require_audit, "refused_audit")
st.title(t("audit_title", lang))
days = view.url_int("days", 7, 1, 400)
since = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
users, actions, pages = queries.audit_choices(data.client(), scope, since)
cols = st.columns([1, 3, 2, 2])
with cols[0]:
    days = st.number_input(
        t("audit_days", lang), 1, 400, value=days, key="days", on_change=view.to_url("days")
    )
since = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)


def _choice(col: int, name: str, title: str, options: list[str]) -> str:
    asked = st.query_params.get(name, "")
    options = ["", *sorted(set(options) | ({asked} if asked else set()))]
    with cols[col]:
        return st.selectbox(
            title, options, index=options.index(asked), key=name, on_change=view.to_url(name),
            format_func=lambda o: t("any", lang) if o == "" else o,
        )  # fmt: skip


user = _choice(1, "user", t("audit_user", lang), users)
action = _choice(2, "action", t("audit_action", lang), actions)
page = _choice(3, "page", t("audit_page", lang), pages)
rows = queries.audit_log(data.client(), scope, since, user, action, page=page)
key = ("audit", days, user, action, page)
if st.session_state.get("dozor_viewed") != key:
    st.session_state["dozor_viewed"] = key
    detail = f"days={days} user={user} action={action} page={page}"
    signin.audit("view", "audit", detail, rows=len(rows), scope=scope)
zone = localtime.zone(localtime.DEFAULT_ZONE)
st.caption(t("audit_count", lang, n=len(rows), days=days, tz=localtime.DEFAULT_ZONE))
st.dataframe(
    [{t("col_at", lang): r.at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"), t("col_user", lang): r.user,
      t("col_role", lang): r.role, t("col_action", lang): r.action, t("col_page", lang): r.page,
      t("col_detail", lang): r.detail, t("col_rows", lang): r.rows} for r in rows],
    hide_index=True, width="stretch",
)  # fmt: skip
