"""Sign-in, scope and audit for every page: who is looking, what they may see, what they did.

Sign-in is Streamlit's own OIDC (``st.login`` / ``st.user``, configured by the ``[auth]`` table of
the secrets file that ``dozor dashboard`` writes from ``DOZOR_OIDC_*``). It says who someone is;
their role and scope come from Dozor's access file (:mod:`dozor.access`). The wall screen may run
signed out only as a kiosk, on the addresses in ``DOZOR_KIOSK_ADDRESSES``.

Every decision is written to the ``audit_log`` table (who, when, what, how many rows): the
dashboard's ClickHouse user may insert there and nowhere else.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
from collections.abc import Callable
from functools import cache

import streamlit as st

from dozor.access import DEV_ACCESS_FILE, KIOSK, AccessDenied, AccessPolicy, Scope
from dozor.dashboard import data
from dozor.dashboard.i18n import LANGS, t

__all__ = [
    "page_lang",
    "way_back",
    "current_scope",
    "manager_scope",
    "audit",
    "auth_configured",
    "kiosk_allowed",
    "client_address",
    "require_sign_in",
]

log = logging.getLogger("dozor.dashboard.access")

_AUDIT_COLUMNS = ["user", "role", "action", "page", "detail", "rows", "address"]


@cache
def _policy() -> AccessPolicy:
    return AccessPolicy.load(data.settings().access_file or DEV_ACCESS_FILE)


def auth_configured() -> bool:
    """Whether the secrets file has an ``[auth]`` table (sign-in is possible)."""
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets file at all
        return False


#: Headers by which a request claims to come through a proxy.
_FORWARDING_HEADERS = ("x-forwarded-for", "x-real-ip", "forwarded")


def client_address() -> str | None:
    """The browser's address as the kiosk check needs it, or None when it cannot be known.

    Streamlit reports a loopback connection as None (``st.context.ip_address``), so None is
    loopback here. Whom the server believes about forwarded addresses is configured
    (``DOZOR_TRUSTED_PROXIES``, handed to uvicorn by ``infra/stack.py``), never assumed; and with
    no proxy configured, a request that still carries a forwarding header is someone claiming to
    be forwarded — its address is unknown, so it is no kiosk, whatever the server made of it.
    """
    if not data.settings().trusted_proxies.strip():
        headers = {k.lower() for k in st.context.headers.keys()}
        if any(h in headers for h in _FORWARDING_HEADERS):
            return None
    address = st.context.ip_address
    if address is None:
        return "127.0.0.1"
    return address if isinstance(address, str) else None


def kiosk_allowed(address: object) -> bool:
    """Whether a browser at ``address`` may show the wall signed out."""
    if not isinstance(address, str) or not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    nets = [n.strip() for n in data.settings().kiosk_addresses.split(",") if n.strip()]
    return any(ip in ipaddress.ip_network(n, strict=False) for n in nets)


def page_lang() -> str:
    """The page's language from the URL (``?lang=kk``); Russian by default, as every page."""
    lang = st.query_params.get("lang", "ru")
    return lang if lang in LANGS else "ru"


def way_back(lang: str, page: str = "wall", **params: str) -> None:
    """A link out of a refusal or an empty page to one the visitor may open (the wall by default),
    in the page's language: no page is a dead end."""
    target = "app_pages/wall.py" if page == "wall" else f"app_pages/{page}.py"
    st.page_link(target, label=t("way_back", lang, page=t(page, lang)), query_params={"lang": lang, **params})


#: Before sign-in the page remembers where the visitor was (path and query, in the tab's
#: sessionStorage); after it the first page goes back there. The identity provider's callback
#: always lands on the app's root, so without this a link to /compstat?city=almaty ended on the
#: wall. Only a path of this site is followed (``/x``, never ``//host`` or ``https:``).
_REMEMBER_PAGE = """<script>
sessionStorage.setItem("dozor_return", window.location.pathname + window.location.search);
</script>"""
_RETURN_TO_PAGE = """<script>
(function () {
  const back = sessionStorage.getItem("dozor_return");
  sessionStorage.removeItem("dozor_return");
  const here = window.location.pathname + window.location.search;
  // Only where the identity provider lands (the root, no query): a page the user opened
  // themselves since is theirs to keep.
  const local = back && back.startsWith("/") && !back.startsWith("//")
    && !back.includes(String.fromCharCode(92));
  if (here === "/" && local && back !== here) {
    window.location.replace(back);
  }
})();
</script>"""


def _who() -> tuple[str, list[str]]:
    user = st.user
    name = str(user.get("email") or user.get("sub") or "")
    groups = user.get("groups") or []
    return name, [str(g) for g in groups] if isinstance(groups, list) else []


def audit(action: str, page: str, detail: str = "", rows: int = 0, scope: Scope | None = None) -> None:
    """Append one line to the audit log; a failure to write it is logged, never shown as a page error."""
    scope = scope or st.session_state.get("dozor_scope")
    user = scope.user if scope else (_who()[0] if auth_configured() and st.user.is_logged_in else "")
    address = client_address() or ""
    row = [user, scope.role if scope else "", action, page, detail[:2000], rows, address]
    try:
        data.client().insert("audit_log", [row], column_names=_AUDIT_COLUMNS)
    except Exception as e:
        log.error("audit log write failed (%s): %s", e, row)


#: Sign-ins this server has seen, by (user, token issue time), with when each was last active: a
#: reload or a second tab opens a new Streamlit session but is the same sign-in, neither a new
#: sign-in in the audit log nor a reset of its idle clock. Bounded: the oldest are forgotten.
_SIGN_INS: dict[tuple[str, str], dt.datetime] = {}
_MAX_SIGN_INS = 10_000


def _touch(key: tuple[str, str]) -> tuple[bool, bool]:
    """(is this a new sign-in, has it been idle too long) for the sign-in ``key``; marks it active."""
    now = dt.datetime.now(dt.UTC)
    last = _SIGN_INS.get(key)
    _SIGN_INS[key] = now
    if len(_SIGN_INS) > _MAX_SIGN_INS:
        for k in sorted(_SIGN_INS, key=_SIGN_INS.__getitem__)[: _MAX_SIGN_INS // 10]:
            del _SIGN_INS[k]
    limit = dt.timedelta(minutes=data.settings().session_idle_minutes)
    return last is None, last is not None and now - last > limit


def current_scope(page: str, kiosk_ok: bool = False) -> Scope | None:
    """The scope of this session on ``page``: the signed-in user's, the kiosk's (if ``kiosk_ok``
    and the address is allowed), or None (the caller shows the sign-in page)."""
    if auth_configured() and st.user.is_logged_in:
        name, groups = _who()
        scope = _policy().scope_for(name, groups)
        new, idle = _touch((name, str(st.user.get("iat") or "")))
        if idle:
            audit("sign_out_idle", page, scope=scope)
            _SIGN_INS.pop((name, str(st.user.get("iat") or "")), None)
            st.logout()
        if scope is None:
            audit("refused", page, f"{name} is signed in but has no role in the access file")
            st.error(t("no_role", page_lang(), user=name))
            st.button(t("sign_out", page_lang()), on_click=st.logout, key="dozor_sign_out_no_role")
            st.stop()
        st.session_state["dozor_scope"] = scope
        if new:
            audit("sign_in", page, f"groups={','.join(groups)}", scope=scope)
            st.html(_RETURN_TO_PAGE, unsafe_allow_javascript=True)
        return scope
    if kiosk_ok and kiosk_allowed(client_address()):
        return KIOSK
    return None


def require_sign_in(page: str) -> None:
    """The page for a visitor who must sign in, in the page's language: a button to the identity
    provider (which brings them back to this page and its filters), and stop."""
    audit("sign_in_required", page)
    lang = page_lang()
    st.markdown("## Dozor")
    if not auth_configured():
        st.error(t("sign_in_unconfigured", lang))
        st.stop()
    st.html(_REMEMBER_PAGE, unsafe_allow_javascript=True)
    st.write(t("sign_in_prompt", lang))
    st.button(t("sign_in", lang), on_click=st.login, type="primary", key="dozor_sign_in")
    st.stop()


def manager_scope(page: str, require: Callable[[Scope], None], refusal: str) -> Scope:
    """The scope of a managers' page: signed in (or sent to sign in), and allowed by ``require``
    (e.g. :meth:`Scope.require_integrity`); otherwise the refusal (an i18n key) is shown in the
    page's language with a way back, and recorded."""
    scope = current_scope(page)
    if scope is None:
        require_sign_in(page)
    try:
        require(scope)
    except AccessDenied:
        audit("refused", page, t(refusal, "en"), scope=scope)
        lang = page_lang()
        st.error(t(refusal, lang))
        way_back(lang)
        st.button(t("sign_out", lang), on_click=st.logout, key="dozor_sign_out_refused")
        st.stop()
    return scope
