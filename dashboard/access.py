"""Who may use the job controls (retrain, download, cancel, resume, make active).

A visitor connected over loopback is the operator. Anyone else gets them only after entering
the password the operator put in ``.streamlit/secrets.toml`` (``jobs_password = "..."``);
without one, remote visitors can look but not act. A visitor who reached the app through a
proxy is not on loopback, even when the proxy is: any common forwarding header, even an empty
one, counts (a proxy that sets none of them cannot be told from the operator, so behind a
reverse proxy the operator sets ``behind_proxy = true`` in the secrets, and then nobody is local).
"""

from __future__ import annotations

import hmac
import ipaddress

import streamlit as st

SECRET_KEY = "jobs_password"
BEHIND_PROXY_KEY = "behind_proxy"
UNLOCKED_KEY = "jobs_unlocked"
# Headers that proxies, CDNs and load balancers add for the visitor they forward.
PROXY_HEADERS = (
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
    "x-client-ip",
    "true-client-ip",
    "cf-connecting-ip",
    "fastly-client-ip",
    "x-cluster-client-ip",
    "via",
)


def client_address() -> str | None:
    """The TCP peer of this browser session, or ``None`` when Streamlit does not know it."""
    from streamlit.runtime.context import _get_client_context

    # st.context.ip_address hides loopback as None, which cannot be told from "unknown".
    try:
        context = _get_client_context()
    except Exception:  # noqa: BLE001 - no runtime (a bare script run): unknown
        return None
    return getattr(context, "remote_ip", None) if context is not None else None


def request_headers() -> dict[str, str]:
    """This session's request headers, names in lower case (empty when none are known)."""
    try:
        return {str(name).lower(): str(value) for name, value in st.context.headers.items()}
    except Exception:  # noqa: BLE001 - no request headers known
        return {}


def through_proxy(headers: dict[str, str]) -> bool:
    """Whether any forwarding header is present. Its presence is enough: an empty or blank
    ``X-Forwarded-For`` still says a proxy stands between the visitor and this server."""
    return any(name.lower() in PROXY_HEADERS for name in headers)


def _behind_proxy_setting() -> bool:
    """The operator's ``behind_proxy = true``: every visitor comes through a proxy."""
    try:
        value = st.secrets.get(BEHIND_PROXY_KEY)
    except Exception:  # noqa: BLE001 - no secrets file, or an unreadable one: not set
        return False
    return value is True or str(value).strip().lower() in {"true", "1", "yes"}


def is_local() -> bool:
    """Whether this visitor is on this machine (loopback, no proxy in between)."""
    address = client_address()
    try:
        loopback = address is not None and ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return False
    return loopback and not _behind_proxy_setting() and not through_proxy(request_headers())


def _password() -> str | None:
    try:
        value = st.secrets.get(SECRET_KEY)
    except Exception:  # noqa: BLE001 - no secrets file, or an unreadable one: no password
        return None
    return str(value) if value else None


def can_control() -> bool:
    """Whether this visitor may start, cancel, resume and promote jobs."""
    return is_local() or bool(st.session_state.get(UNLOCKED_KEY))


def render_unlock() -> None:
    """For a remote visitor: a password field when the operator set one, else why the
    controls are missing."""
    password = _password()
    if password is None:
        st.caption(
            "Retraining, downloads and changing the served model are open only to the operator "
            "(on this machine), unless the operator sets a password."
        )
        return
    with st.form("jobs_unlock", border=False):
        typed = st.text_input("Password for the job controls", type="password", key="jobs_password_input")
        if st.form_submit_button("Unlock"):
            if hmac.compare_digest(typed.encode(), password.encode()):
                st.session_state[UNLOCKED_KEY] = True
                st.rerun()
            st.error("Wrong password.")
