"""Who may use a notebook session's JupyterLab: only requests that came through its own route.

Galaxy hands the user a URL for the session (its route through nginx and gx-it-proxy):
https://<key>-<token>.ep.interactivetool.<host>/ by subdomain, or
https://<host>/interactivetool/ep/<key>/<token>/ by path. The token in it is the session's
secret. Galaxy's job runner writes that URL into the session's secrets folder
(GXNB_SECRETS_DIR/session_url, read-only in the container), and this identity provider lets a
request in only when it names the route's host (subdomain routing; by path, the server's base
URL is the route's own path and serves nothing else). Another route pointed at this session,
or a connection from a host the node's firewall trusts, names another host or none: refused
(403), before any handler runs, for pages, the REST API and kernel websockets alike.
Processes inside the container itself (the health check, the user's own terminal) connect
over the loopback and are let in.

Off Galaxy (a plain `docker run`), start-notebook.sh keeps Jupyter's own token login instead.
"""

from __future__ import annotations

import ipaddress
import os
import pathlib
from urllib.parse import urlsplit

from jupyter_server.auth.identity import IdentityProvider, User
from traitlets import Unicode

SECRETS_DIR = pathlib.Path(os.environ.get("GXNB_SECRETS_DIR", "/run/gxnb/secrets"))
SESSION_URL_FILE = "session_url"


def read_session_url(secrets_dir: pathlib.Path = SECRETS_DIR) -> str:
    """The route Galaxy gave this session ('' where Galaxy gave none: not a Galaxy session)."""
    try:
        return (secrets_dir / SESSION_URL_FILE).read_text().strip()
    except FileNotFoundError:
        return ""


def host_name(host_header: str) -> str:
    """A Host header's name, without its port, in lower case ('' for none)."""
    host = (host_header or "").strip().lower()
    if host.startswith("["):  # [IPv6]:port
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def from_inside(peer_address: str | None) -> bool:
    """Whether a connection came from this container's own loopback."""
    try:
        return ipaddress.ip_address((peer_address or "").split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def admitted(session_url: str, host_header: str, peer_address: str | None) -> bool:
    """The rule: through the session's own route (its host), or from inside the container."""
    if from_inside(peer_address):
        return True
    route_host = urlsplit(session_url).hostname or ""
    return bool(route_host) and host_name(host_header) == route_host.lower()


class SessionRouteIdentityProvider(IdentityProvider):
    """Jupyter Server's identity provider for a Galaxy session: the route is the login."""

    session_url = Unicode(
        "", config=True, help="The session's URL as Galaxy hands it out (default: read from the secrets folder)."
    )

    def _route(self) -> str:
        if not self.session_url:
            self.session_url = read_session_url()
        return self.session_url

    @property
    def auth_enabled(self) -> bool:
        return True

    @property
    def login_available(self) -> bool:
        return False  # nothing to log in to: a request without the route gets 403

    @property
    def logout_available(self) -> bool:
        return False

    def get_user(self, handler) -> User | None:
        context = getattr(handler.request.connection, "context", None)
        peer = getattr(context, "address", None)
        peer_address = peer[0] if isinstance(peer, tuple) and peer else None
        if not admitted(self._route(), handler.request.headers.get("Host", ""), peer_address):
            # The Host is not logged: another session's route name carries that session's token.
            self.log.warning("gxnb: refused %s %s from %s: not through this session's route",
                             handler.request.method, handler.request.path, peer_address)
            return None
        return User(username="galaxy", name="Galaxy user", display_name="Galaxy user", initials="G")

    def validate_security(self, app, ssl_options=None) -> None:
        app.log.info("gxnb: this session answers only through its own route")


def configure(c) -> None:
    """Jupyter Server's settings for a Galaxy session (the image's jupyter_server_config.py calls
    this where GXNB_SESSION_AUTH=route): this identity provider, the route's path as the base
    URL and the route's origin as the only one allowed for cross-origin requests. Set here, not
    on the command line, where the node's `ps` would show the route's token."""
    session_url = read_session_url()
    if not session_url:
        raise SystemExit(
            f"gxnb: GXNB_SESSION_AUTH=route, but Galaxy gave this session no route ({SECRETS_DIR / SESSION_URL_FILE}): "
            "Galaxy's job runner writes it for every notebook session"
        )
    route = urlsplit(session_url)
    c.ServerApp.identity_provider_class = SessionRouteIdentityProvider
    c.ServerApp.base_url = route.path or "/"
    c.ServerApp.allow_origin = f"{route.scheme}://{route.netloc}"
    if route.scheme == "https":
        # Galaxy shows the session inside its own page, another site: the browser keeps (and
        # sends) the XSRF cookie from that frame only if it is SameSite=None (which needs Secure),
        # and, where third-party cookies are blocked, Partitioned (kept for that page only).
        _cookies_may_be_partitioned()
        c.ServerApp.tornado_settings = {
            "xsrf_cookie_kwargs": {"samesite": "None", "secure": True, "partitioned": True}
        }


def _cookies_may_be_partitioned() -> None:
    """Python's cookie library knows the Partitioned attribute (CHIPS) from 3.14 on; before, it
    is taught here (tornado hands cookie attributes to it)."""
    import http.cookies

    if "partitioned" not in http.cookies.Morsel._reserved:
        http.cookies.Morsel._reserved["partitioned"] = "Partitioned"
        http.cookies.Morsel._flags.add("partitioned")
