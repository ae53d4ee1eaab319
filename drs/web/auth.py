"""Who may call what: one table (endpoint -> role), enforced by one before_request hook.

A request proves who it is by `Authorization: Bearer <token>`, by HTTP Basic with a user's password (for curl),
or by the page's signed session cookie (drs/web/signin.py; for reading only: GET and HEAD). Secrets are compared
in constant time (drs/web/users.py). A missing or wrong credential is a 401 with `WWW-Authenticate`, the wrong role a
403, both in the API's JSON error shape; the page sends a person without a credential to the sign-in form
instead. A token in the query string is refused (URLs end up in logs and browser histories).

With no user and no token configured, the app is open as before, but only while it serves on the loopback
and the request is local: from the loopback, through no proxy (no forwarding header), addressed to a loopback
name (Host: localhost or 127.0.0.1, not a rebound DNS name); drs/web/serving.py
refuses to start open on any other address. Failed password checks go to the audit log (drs/history/audit.py). `auth: "off"`
in config turns every check off, on purpose. See docs/security.md (roles and endpoints).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from flask import Flask, Response, current_app, g, redirect, request, session, url_for
from werkzeug.wrappers import Response as BaseResponse

from drs.core.settings import Config
from drs.history import audit
from drs.web import users as user_store
from drs.web.requests import error_response
from drs.web.users import Users, UsersError

EXTENSION = "drs.auth"
VIEWER, OPERATOR = user_store.ROLES
OPEN = None
# Every endpoint of the app and the role it needs (None: open to all). tests/web/test_auth.py checks that this is every route.
ACCESS: dict[str, str | None] = {
    "api.health": OPEN,  # for probes; says nothing about clients
    "api.risk_endpoint": VIEWER,
    "api.prediction": OPERATOR,
    "api.scoring_endpoint": OPERATOR,
    "api.summarystats": OPERATOR,
    "api.diagnostics_endpoint": OPERATOR,
    "telemetry.metrics_endpoint": OPERATOR,
    "page.index": VIEWER,
    "page.client": VIEWER,
    "page.risk_list_csv": VIEWER,
    "page.image": VIEWER,
    "audit.audit_page": OPERATOR,  # who did what: names and addresses
    "calls.queue_endpoint": VIEWER,  # today's call queue
    "calls.record_endpoint": VIEWER,  # client managers record their calls
    "calls.export_csv": VIEWER,
    "calls.record_form": OPEN,  # the page's form: checks the session and its CSRF token itself (drs/web/calls.py)
    "page_assets.static": OPEN,  # the CSS and script, needed by the sign-in form
    "signin.form": OPEN,
    "signin.sign_in": OPEN,
    "signin.sign_out": OPEN,  # checks its CSRF token itself
}
PAGE_BLUEPRINTS = ("page", "audit")  # a person without a credential is sent to the sign-in form
CHALLENGE = 'Bearer realm="drs", Basic realm="drs", charset="UTF-8"'
QUERY_TOKENS = ("access_token", "token", "api_key")
READ_METHODS = ("GET", "HEAD")
# any of these says a proxy passed the request on: not local, even from 127.0.0.1 (open mode serves only local requests)
FORWARDING_HEADERS = (
    "Forwarded",
    "X-Forwarded-For",
    "X-Forwarded-Host",
    "X-Forwarded-Proto",
    "X-Forwarded-Port",
    "X-Forwarded-Server",
    "X-Forwarded-Prefix",
    "X-Real-IP",
    "X-Client-IP",
    "True-Client-IP",
    "CF-Connecting-IP",
    "Via",
)


@dataclass(frozen=True)
class Identity:
    name: str
    role: str
    how: str  # "token", "password", "session", "open" or "off"


class UsersCache:
    """The users file, re-read when it changes (so `python -m drs.users` takes effect without a restart)."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._key: tuple[int, int, int, int] | None = None
        self._users = Users()

    def get(self) -> Users:
        try:
            st = self.path.stat()
            key = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_mode)
        except FileNotFoundError:
            key = None
        with self._lock:
            if key is None or key != self._key:
                self._users = user_store.read_users(self.path)  # UsersError for a file others may read
                self._key = key
            return self._users


class FailureLimiter:
    """Failed password checks per address: at most `limit` (signin_failures_per_minute) in `window` seconds, in this worker process."""

    def __init__(self, limit: int, window: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.limit, self.window, self.clock = limit, window, clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, address: str) -> deque[float]:
        now = self.clock()
        found = self._failures.setdefault(address, deque())
        while found and now - found[0] >= self.window:
            found.popleft()
        return found

    def blocked(self, address: str) -> float:
        """Seconds until `address` may try again (0: it may now)."""
        with self._lock:
            found = self._recent(address)
            return self.window - (self.clock() - found[0]) if len(found) >= self.limit else 0.0

    def failed(self, address: str) -> None:
        with self._lock:
            self._recent(address).append(self.clock())
            if len(self._failures) > 10_000:  # many addresses: forget those with no recent failure
                for key in [k for k, v in self._failures.items() if not v]:
                    del self._failures[key]


@dataclass
class Auth:
    config: Config
    users: UsersCache
    limiter: FailureLimiter
    loopback_bind: bool  # serving on the loopback only (gunicorn.conf.py says, through DRS_BIND)


def auth_state() -> Auth:
    state: Auth = current_app.extensions[EXTENSION]
    return state


def is_loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return address == "localhost"


def client_address() -> str:
    return request.remote_addr or "unknown"


def unauthorized(message: str) -> Response:
    response, status = error_response(401, message)
    response.status_code = status
    response.headers["WWW-Authenticate"] = CHALLENGE
    return response


def forbidden(identity: Identity, needed: str) -> Response:
    response, status = error_response(403, f"{identity.name} has the role {identity.role}; this needs {needed}")
    response.status_code = status
    return response


def too_many(seconds: float) -> Response:
    response, status = error_response(429, "too many failed sign-ins from this address; try again in a minute")
    response.status_code = status
    response.headers["Retry-After"] = str(max(1, round(seconds)))
    return response


def check_password(state: Auth, users: Users, name: str, password: str) -> tuple[str | None, Response | None]:
    """The role for a user's password, or why not: (None, 429) while the address is limited, (None, None) when wrong."""
    address = client_address()
    wait = state.limiter.blocked(address)
    if wait:
        current_app.logger.warning("sign-in refused for %r from %s: too many failures", name, address)
        return None, too_many(wait)
    role = users.check_password(name, password)
    if role is None:
        state.limiter.failed(address)
        current_app.logger.warning("failed sign-in for %r from %s", name, address)  # never the password
        record(state, name, audit.SIGN_IN_FAILED, {"via": "form" if request.endpoint == "signin.sign_in" else "HTTP Basic"})
    return role, None


def record(state: Auth, actor: str, action: str, details: dict[str, object] | None = None) -> None:
    """One audit event from the web (drs/history/audit.py); a history the app cannot write is an error in the log, not a 500."""
    try:
        audit.record(state.config, actor, action, actor, client_address(), details)
    except (OSError, sqlite3.Error) as exc:
        current_app.logger.error("audit log %s: cannot record %s of %r: %s", state.config.history_db, action, actor, exc)


def _from_header(state: Auth, users: Users, header: str) -> Identity | Response:
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        found = users.check_token(value)
        return Identity(found[0], found[1], "token") if found else unauthorized("the token is not valid")
    if scheme.lower() == "basic" and value:
        try:
            name, sep, password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            sep = ""
        if not sep:
            return unauthorized("the Basic credential is not base64 of name:password")
        role, refused = check_password(state, users, name, password)
        if refused is not None:
            return refused
        return Identity(name, role, "password") if role else unauthorized("wrong name or password")
    return unauthorized("send Authorization: Bearer <token> or Basic credentials")


def from_session(state: Auth, users: Users) -> Identity | None:
    """The signed-in user of the session cookie, while the sign-in is young enough and the user still has that role."""
    name, since = session.get("user"), session.get("since")
    if not isinstance(name, str) or not isinstance(since, (int, float)):
        return None
    if time.time() - since > state.config.session_hours * 3600:
        session.pop("user", None)
        return None
    user = users.users.get(name)
    if user is None or not hmac.compare_digest(user["role"], str(session.get("role", ""))):
        return None
    # the user's session epoch changes on sign-out, a new password or role, removal: every older cookie stops here
    if not hmac.compare_digest(str(user.get("session_epoch", "")), str(session.get("epoch", ""))):
        return None
    return Identity(name, user["role"], "session")


def identify(state: Auth, users: Users) -> Identity | Response | None:
    header = request.headers.get("Authorization")
    if header is not None:
        return _from_header(state, users, header)
    return from_session(state, users) if request.method in READ_METHODS else None


def check_access() -> BaseResponse | None:
    """The before_request hook: None lets the request through; otherwise the answer (401, 403, 400, 429, 503)."""
    if any(name in request.args for name in QUERY_TOKENS):
        response, status = error_response(400, "a credential in the URL is refused: send it in the Authorization header")
        response.status_code = status
        return response
    state = auth_state()
    if state.config.auth == "off":
        g.identity = Identity("anyone", OPERATOR, "off")
        return None
    needed = ACCESS.get(request.endpoint or "", VIEWER) if request.url_rule is not None else VIEWER  # unknown: fail closed
    if needed is OPEN:
        return None
    try:
        users = state.users.get()
    except UsersError as exc:
        current_app.logger.error("%s", exc)
        response, status = error_response(503, "the users file cannot be used; see the server log")
        response.status_code = status
        return response
    if users.empty:
        return open_mode()
    found = identify(state, users)
    if isinstance(found, Response):
        return found
    if found is None:
        if request.blueprint in PAGE_BLUEPRINTS and request.method in READ_METHODS:
            return redirect(url_for("signin.form", next=own_path()))
        return unauthorized("sign in, or send Authorization: Bearer <token> (python -m drs.users token NAME --role ROLE)")
    if not user_store.role_allows(found.role, needed):
        return forbidden(found, needed)
    g.identity = found
    return None


def own_path() -> str:
    """This request's path and query as a link back to it: the path quoted again, so that an id with `?`, `#` or `%`
    in /clients/<id> comes back as itself after the sign-in (`request.full_path` is decoded)."""
    query = request.query_string.decode("latin-1")
    return quote(request.path) + (f"?{query}" if query else "")


def host_name(host: str) -> str:
    """The name or address of a Host header: 'localhost' of 'localhost:8000', '::1' of '[::1]:8000'."""
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def forwarded_by() -> list[str]:
    """The forwarding headers of the request: present, it came through a proxy, whatever its address says."""
    return [name for name in FORWARDING_HEADERS if name in request.headers]


def open_mode() -> Response | None:
    """No user and no token yet: serve the request only if it is local (loopback bind, loopback peer, no proxy)."""
    state = auth_state()
    proxied, host = forwarded_by(), host_name(request.host)
    local_host = is_loopback(host)  # a page elsewhere whose name resolves to 127.0.0.1 (DNS rebinding) sends its own Host
    if state.loopback_bind and is_loopback(request.remote_addr) and not proxied and local_host:
        g.identity = Identity("anyone", OPERATOR, "open")  # as before authentication existed
        return None
    if proxied:
        why = f"it came through a proxy ({', '.join(proxied)})"
    elif not is_loopback(request.remote_addr):
        why = f"it came from {client_address()}"
    elif not local_host:
        why = f"it was addressed to {host!r}, not to this machine"
    else:
        why = "this server listens beyond the loopback"
    return unauthorized(
        f"no user is configured, so only local requests are served and {why}: add a user with"
        " `python -m drs.users add NAME --role operator`"
    )


def install(app: Flask, config: Config, loopback_bind: bool) -> Auth:
    """Check every request of `app` against ACCESS (registered before the other hooks, so it runs first)."""
    state = Auth(config, UsersCache(config.users_file), FailureLimiter(config.signin_failures_per_minute), loopback_bind)
    state.users.get()  # a users file others may read stops the app here (UsersError)
    app.extensions[EXTENSION] = state
    app.before_request(check_access)
    return state
