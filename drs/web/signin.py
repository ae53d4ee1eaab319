"""The page's sign-in: a form with a CSRF token, a signed session cookie, sign-out, sessions that expire.

The session lives in Flask's signed cookie (HttpOnly, SameSite=Lax, Secure when the request came over
TLS), signed with a key generated on the first start and kept, mode 0600, beside the users file. A
sign-in lasts `session_hours` from the moment it was made, and ends earlier when the user's session epoch in
the users file changes: on sign-out (every session of that user), a new password or role, removal (drs/web/auth.py
checks; a copied cookie stops working then too). `next` is followed only to a path on this site. Failed sign-ins are
limited per address (drs/web/auth.py's FailureLimiter) and logged with the name, never the password. See docs/security.md#how-a-caller-proves-who-it-is.
"""

from __future__ import annotations

import hmac
import os
import re
import secrets
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from flask import Blueprint, Flask, Response, abort, current_app, redirect, render_template, request, session, url_for
from flask.sessions import SecureCookieSessionInterface

from drs.core import layout
from drs.core.settings import Config
from drs.history import audit
from drs.web import auth
from drs.web import users as user_store
from drs.web.users import write_private

signin = Blueprint("signin", __name__, template_folder="templates")
CSRF_FIELD = "csrf_token"
MAX_NEXT = 2048  # a longer `next` is not a link of this site


class SessionCookies(SecureCookieSessionInterface):
    """Flask's signed cookie, marked Secure whenever the request itself came over TLS (or a trusted proxy says so)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(request.is_secure) if request else False


def secret_key(path: Path) -> bytes:
    """The key of `path`, created (0600, 32 random bytes) on the first start; every worker reads the same one."""
    try:
        with open(path, "rb") as handle:
            if os.fstat(handle.fileno()).st_mode & 0o077:
                raise user_store.UsersError(f"secret key {path} may be read by others: run `chmod 600 {path}` and start again")
            key = handle.read()
        if len(key) >= 32:
            return key
    except FileNotFoundError:
        pass
    candidate = path.with_name(layout.TMP_PREFIX + path.name + f".{os.getpid()}")
    write_private(candidate, secrets.token_bytes(32))
    try:
        os.link(candidate, path)  # fails if another worker made it first: then everyone uses that one
    except FileExistsError:
        pass
    finally:
        os.unlink(candidate)
    return path.read_bytes()


def install(app: Flask, config: Config) -> None:
    app.secret_key = secret_key(config.users_file.parent / layout.SECRET_KEY_FILE)
    app.session_interface = SessionCookies()
    app.config.update(
        SESSION_COOKIE_NAME="drs_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_REFRESH_EACH_REQUEST=False,  # a sign-in expires session_hours after it was made, however busy
        PERMANENT_SESSION_LIFETIME=timedelta(hours=config.session_hours),
    )
    app.register_blueprint(signin)
    app.context_processor(lambda: {"csrf_token": csrf_token, "signed_in": session.get("user")})


def csrf_token() -> str:
    """This session's CSRF token (made on first use); the forms send it back."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def _check_csrf() -> None:
    sent, kept = request.form.get(CSRF_FIELD, ""), session.get("csrf")
    if not isinstance(kept, str) or not hmac.compare_digest(sent.encode(), kept.encode()):
        abort(400, "the form has expired or did not come from this site; reload the sign-in page and try again")


def same_site_path(target: str | None) -> str | None:
    """`target` as a browser would read it, if that is a path on this site; else None.

    A browser drops ASCII tab, newline and carriage return anywhere in a URL and reads a backslash as a slash
    (the WHATWG URL standard), so `/\t/evil.example` and `/\\evil.example` are `//evil.example`: another host. The
    check runs on that normalised form, and on it percent-decoded too (`/%2F%2Fevil.example`); the form itself is what
    is returned, so the browser follows exactly what was checked."""
    if not target or len(target) > MAX_NEXT:
        return None
    cleaned = re.sub(r"[\t\n\r]", "", target).replace("\\", "/")
    decoded = re.sub(r"[\t\n\r]", "", unquote(cleaned)).replace("\\", "/")
    for form in (cleaned, decoded):
        if not form.startswith("/") or form.startswith("//") or any(ord(c) < 0x20 or ord(c) == 0x7F for c in form):
            return None
        parts = urlsplit(form)
        if parts.scheme or parts.netloc:
            return None
    return cleaned


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site only (never another host, a full URL or a script), else the page."""
    return same_site_path(target) or url_for("page.index")


def _form(status: int = 200, **context: Any) -> tuple[str, int]:
    return render_template("signin.html", next=safe_next(request.values.get("next")), **context), status


@signin.get("/signin")
def form() -> tuple[str, int]:
    return _form()


@signin.post("/signin")
def sign_in() -> Response | tuple[str, int]:
    _check_csrf()
    state = auth.auth_state()
    name = request.form.get("name", "")
    role, refused = auth.check_password(state, state.users.get(), name, request.form.get("password", ""))
    if refused is not None:
        return _form(429, error="Too many failed sign-ins from this address. Wait a minute and try again.", name=name)
    if role is None:
        return _form(401, error="Wrong name or password.", name=name)
    epoch = str(state.users.get().users.get(name, {}).get("session_epoch", ""))
    session.clear()  # a new session for the signed-in user (no fixation of the one before)
    session.permanent = True
    session.update(user=name, role=role, since=time.time(), epoch=epoch, csrf=secrets.token_urlsafe(32))
    current_app.logger.info("%s (%s) signed in from %s", name, role, auth.client_address())
    auth.record(state, name, audit.SIGN_IN, {"role": role})
    return redirect(safe_next(request.form.get("next")))  # type: ignore[return-value]


@signin.post("/signout")
def sign_out() -> Response:
    """Sign out: this user's sessions end everywhere (a new session epoch), so a copied cookie stops working too."""
    _check_csrf()
    state, name = auth.auth_state(), session.get("user")
    if isinstance(name, str) and auth.from_session(state, state.users.get()) is not None:
        try:
            user_store.end_sessions(state.config.users_file, name)
        except OSError as exc:  # a users file this server may not write: this browser is signed out, copies are not
            current_app.logger.error("cannot end the other sessions of %r (%s): remove or re-add the user to end them", name, exc)
        auth.record(state, name, audit.SIGN_OUT, {"sessions": "all of this user's"})
    session.clear()
    return redirect(url_for("signin.form"))  # type: ignore[return-value]
