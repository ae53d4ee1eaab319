"""Whether the app may start where it is asked to serve: never open on the network by mistake.

gunicorn.conf.py asks `refusal` before any worker starts (and passes the bind on to the workers as DRS_BIND,
so create_app asks again). Serving on an address other than the loopback with authentication on and no
user or token configured is refused with one line saying how to add a user, or how to switch
authentication off on purpose; `auth: "off"` is allowed and warned about at every start. Serving beyond the
loopback without TLS and with no proxy declared (`proxy_hops` 0) is warned about once, at start, with the fix.
A worker class that idle or slow clients can hold up, or a request head given no time limit, is warned
about at start too (`slow_client_warning`; docs/security.md#slow-and-idle-clients).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable

from drs.core.settings import Config
from drs.web import users

BIND_ENV = "DRS_BIND"  # the addresses gunicorn serves on, comma-separated (set by gunicorn.conf.py)


def bind_host(bind: str) -> str:
    """The host of a gunicorn bind: '0.0.0.0' of '0.0.0.0:8000', '::1' of '[::1]:8000'; 'unix:...' stays as it is."""
    if bind.startswith("unix:") or bind.startswith("fd://"):
        return bind
    if bind.startswith("["):
        return bind[1:].split("]", 1)[0]
    return bind.rsplit(":", 1)[0] if bind.count(":") == 1 else bind


def is_loopback_bind(bind: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost, and for a unix socket (only local processes reach it)."""
    host = bind_host(bind.strip())
    if host.startswith("unix:"):
        return True
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name, 0.0.0.0, fd://: possibly the network


def binds_from_env() -> list[str] | None:
    value = os.environ.get(BIND_ENV)
    return [b for b in value.split(",") if b.strip()] if value else None


def refusal(config: Config, binds: Iterable[str]) -> str | None:
    """The one line that refuses to start open on the network, or None when starting is fine.

    UsersError (a ConfigError) when the users file cannot be used at all."""
    outside = [b for b in binds if not is_loopback_bind(b)]
    if config.auth == "off" or not outside:
        return None
    if not users.read_users(config.users_file).empty:
        return None
    return (
        f"refusing to serve on {', '.join(outside)} with no user configured: add one with "
        f"`python -m drs.users add NAME --role operator` (users file {config.users_file}), "
        f'or set "auth": "off" in {config.config_file.name} to serve open on purpose'
    )


def warning(config: Config) -> str | None:
    """The warning of every start with authentication off."""
    if config.auth != "off":
        return None
    return f'authentication is off ("auth": "off" in {config.config_file.name}): anyone who reaches this server reads every client'


def tls_warning(config: Config, binds: Iterable[str], tls: bool) -> str | None:
    """The warning of a start beyond the loopback without TLS and with no proxy declared: credentials in clear."""
    outside = [b for b in binds if not is_loopback_bind(b)]
    if tls or config.proxy_hops or not outside:
        return None
    return (
        f"serving on {', '.join(outside)} without TLS: passwords, tokens and session cookies cross the network in clear;"
        ' give gunicorn a certificate (GUNICORN_CMD_ARGS="--certfile=cert.pem --keyfile=key.pem"), or serve on 127.0.0.1'
        f' behind a TLS proxy and set "proxy_hops": 1 in {config.config_file.name} (docs/security.md#tls)'
    )


MAX_KEEPALIVE = 30  # seconds a request head may take before the start warns (default 5)
ASYNCHRONOUS = ("gevent", "eventlet")  # gunicorn's worker classes with a greenlet per connection


def _asynchronous(worker_class: str) -> bool:
    """Whether gunicorn's `worker_class` (as given: 'gevent', 'egg:gunicorn#gevent', a class path, any case) gives each
    connection a greenlet rather than a worker or a thread."""
    name = worker_class.strip().lower().rsplit("#", 1)[-1]
    return name in ASYNCHRONOUS or name.startswith(("gunicorn.workers.ggevent.", "gunicorn.workers.geventlet."))


def slow_client_warning(worker_class: str, keepalive: int) -> str | None:
    """The warning of a start whose workers a few idle or slow connections can hold (issue 21), or None.

    gevent's workers (the default) give each connection a greenlet and close one whose request head has not
    arrived within `keepalive` seconds; with keepalive 0 a head has no limit. sync workers serve one
    connection each, gthread workers one per thread, for as long as the client keeps it open."""
    if _asynchronous(worker_class):
        if 1 <= keepalive <= MAX_KEEPALIVE:
            return None
        if keepalive >= 1:
            return (
                f"KEEPALIVE={keepalive}: a request head may take {keepalive} seconds, so clients that never finish one"
                f" hold connections that long and use up WORKER_CONNECTIONS; set KEEPALIVE to at most {MAX_KEEPALIVE} seconds"
                " (docs/security.md#slow-and-idle-clients)"
            )
        return (
            "KEEPALIVE=0: a request head has no time limit, so clients that never finish one hold connections"
            " until WORKER_CONNECTIONS are used up; set KEEPALIVE to 1 or more seconds (docs/security.md#slow-and-idle-clients)"
        )
    return (
        f"worker class {worker_class}: each idle or slow connection holds a worker (or a thread) for as long as the"
        " client keeps it open, so a few stop the server answering anyone; serve behind a buffering proxy, or use"
        " the default WORKER_CLASS=gevent (docs/security.md#slow-and-idle-clients)"
    )
