"""Who may use the page and the API: users (a password, for the page and HTTP Basic) and API tokens, each with a role.

`python -m drs.users add NAME --role viewer|operator` (asks for the password; reads one line of standard
input when that is not a terminal), `token NAME --role ROLE` (prints a new token once), `list`, `remove NAME`.

Only hashes are stored: passwords with Werkzeug's scrypt (salted, memory-hard), tokens with SHA-256 (a token
is 256 random bits, so a fast hash is enough and the API can check one on every request). The file is
`users_file` in config (default instance/users.json, git-ignored), written atomically with mode 0600; a file
the group or others may read is refused with a message saying how to fix it. Checks compare in constant time.
Every change is one read-modify-write under an exclusive lock (`update`), so concurrent changes never lose one
another. Each user has a random `session_epoch` that the page's session cookie carries: a new password or role,
removal, or a sign-out (`end_sessions`) gives a new one and so ends every session signed in before. Each change
made by the command is one row of the audit log (drs/history/audit.py). See docs/security.md#users-and-tokens.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import stat
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from werkzeug.security import check_password_hash, generate_password_hash

from drs.core import layout
from drs.core.errors import ConfigError
from drs.core.fileio import atomic_write_bytes, run_lock
from drs.core.settings import DEFAULT_CONFIG, load_config
from drs.history import audit

ROLES = ("viewer", "operator")  # each role may do what the roles before it may
TOKEN_PREFIX = "drs_"
MIN_PASSWORD = 8
USERS_LOCK_WAIT_SECONDS = 30.0  # a change of the users file waits this long for another one in progress
PIPELINE_TOKEN = "pipeline"  # the token name the full process's own API calls use (its secret: layout.PIPELINE_TOKEN_FILE)
T = TypeVar("T")
# a hash to check a password against when the user does not exist, so that a wrong name takes as long as a wrong password
_DUMMY_HASH = "scrypt:32768:8:1$dummysaltdummysa$" + "0" * 128


class UsersError(ConfigError):
    """A users file that cannot be used (group/other-readable, not JSON, unwritable); the message says what to do."""


def role_allows(role: str, needed: str) -> bool:
    """Whether `role` may do what `needed` may (operator may do everything a viewer may)."""
    return role in ROLES and needed in ROLES and ROLES.index(role) >= ROLES.index(needed)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass
class Users:
    """The users file's content: name -> {role, password hash}, token name -> {role, SHA-256}."""

    users: dict[str, dict[str, str]] = field(default_factory=dict)
    tokens: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.users and not self.tokens

    def check_password(self, name: str, password: str) -> str | None:
        """The user's role when `password` is theirs, else None; as slow for an unknown name as for a known one."""
        user = self.users.get(name)
        ok = check_password_hash(user["password"] if user else _DUMMY_HASH, password)
        return user["role"] if user and ok else None

    def check_token(self, token: str) -> tuple[str, str] | None:
        """(token name, role) of a valid token, else None; every stored hash is compared, in constant time each."""
        digest = token_hash(token)
        found = None
        for name, entry in self.tokens.items():
            if hmac.compare_digest(digest, entry["sha256"]):
                found = (name, entry["role"])
        return found

    def as_json(self) -> dict[str, dict[str, dict[str, str]]]:
        return {"users": self.users, "tokens": self.tokens}


def _refuse_open_mode(path: Path, mode: int) -> None:
    if mode & 0o077:
        raise UsersError(f"users file {path} may be read by others (mode {stat.S_IMODE(mode):04o}): run `chmod 600 {path}` and start again")


def read_users(path: Path) -> Users:
    """The users of `path` (none when it does not exist); UsersError when others may read it or it is not a users file."""
    try:
        with open(path, encoding="utf-8") as handle:
            _refuse_open_mode(path, os.fstat(handle.fileno()).st_mode)
            raw = json.load(handle)
    except FileNotFoundError:
        return Users()
    except (OSError, ValueError) as exc:
        raise UsersError(f"users file {path} cannot be read: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("users", {}), dict) or not isinstance(raw.get("tokens", {}), dict):
        raise UsersError(f"users file {path} is not a users file (expected an object with 'users' and 'tokens')")
    return Users(users=dict(raw.get("users", {})), tokens=dict(raw.get("tokens", {})))


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically, readable by its owner only (0600) from the first byte, in a 0700 folder."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write_bytes(path, data, mode=0o600)


def write_users(path: Path, users: Users) -> None:
    write_private(path, (json.dumps(users.as_json(), indent=2, sort_keys=True) + "\n").encode("utf-8"))


def lock_file(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def update(path: Path, change: Callable[[Users], T]) -> T:
    """Apply `change` to the users of `path` and write them back, under an exclusive lock on a file beside it, so
    that two changes at once (two `python -m drs.users`, a sign-out in the app) never lose one another."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with run_lock(lock_file(path), wait_seconds=USERS_LOCK_WAIT_SECONDS):
        users = read_users(path)
        before = json.dumps(users.as_json(), sort_keys=True)
        result = change(users)
        if json.dumps(users.as_json(), sort_keys=True) != before:  # a change that changed nothing writes nothing
            write_users(path, users)
        return result


def new_epoch() -> str:
    """A user's session epoch: part of every session cookie; a new one ends every session signed in before it."""
    return secrets.token_hex(16)


def add_user(path: Path, name: str, role: str, password: str) -> dict[str, str] | None:
    """Add or replace user `name` (a new password or role ends their sessions); the entry it replaced, if any.

    ValueError for a bad role or a short password."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"the password must have at least {MIN_PASSWORD} characters")
    entry = {"role": role, "password": generate_password_hash(password), "created_at": layout.utc_now(), "session_epoch": new_epoch()}

    def change(users: Users) -> dict[str, str] | None:
        before = users.users.get(name)
        users.users[name] = entry
        return before

    return update(path, change)


def end_sessions(path: Path, name: str) -> bool:
    """End every session of user `name` (a new session epoch); False when there is no such user."""

    def change(users: Users) -> bool:
        if name not in users.users:
            return False
        users.users[name] = {**users.users[name], "session_epoch": new_epoch()}
        return True

    return update(path, change)


def new_token(path: Path, name: str, role: str) -> str:
    """Create (or replace) the token `name` and return it; only its hash is kept."""
    return issue_token(path, name, role)[0]


def issue_token(path: Path, name: str, role: str) -> tuple[str, dict[str, str] | None]:
    """A new token `name` (shown once) and the entry it replaced, if any."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    entry = {"role": role, "sha256": token_hash(token), "created_at": layout.utc_now()}

    def change(users: Users) -> dict[str, str] | None:
        before = users.tokens.get(name)
        users.tokens[name] = entry
        return before

    return token, update(path, change)


def remove(path: Path, name: str) -> list[str]:
    """Remove the user and the token called `name`; what was removed ("user", "token")."""
    return update(
        path, lambda users: [kind for kind, table in (("user", users.users), ("token", users.tokens)) if table.pop(name, None) is not None]
    )


def pipeline_token_file(path: Path) -> Path:
    return path.parent / layout.PIPELINE_TOKEN_FILE


def pipeline_token(path: Path) -> str | None:
    """The full process's own operator token, kept 0600 beside the users file `path`; issued on first need.

    None while there is no user or token: the API is then open on the loopback and a token would close it.
    A token file whose token is no longer registered (`remove pipeline`) is returned as it is, so a
    revocation sticks; deleting the file issues a new token (and replaces the old one's hash)."""
    if read_users(path).empty:
        return None
    secret = pipeline_token_file(path)
    with run_lock(
        path.parent / f".{layout.PIPELINE_TOKEN_FILE}.lock", wait_seconds=USERS_LOCK_WAIT_SECONDS
    ):  # two first calls issue one token
        try:
            with open(secret, encoding="utf-8") as handle:
                if os.fstat(handle.fileno()).st_mode & 0o077:
                    raise UsersError(f"pipeline token {secret} may be read by others: run `chmod 600 {secret}`")
                return handle.read().strip()
        except FileNotFoundError:
            token = new_token(path, PIPELINE_TOKEN, "operator")  # the four course calls need operator
            write_private(secret, token.encode("utf-8"))
            return token
        except OSError as exc:
            raise UsersError(f"pipeline token {secret} cannot be read: {exc}") from None


def listing(users: Users) -> list[str]:
    return [
        f"{kind:5}  {name:20} {entry['role']:8} created {entry.get('created_at', '?')}"
        for kind, table in (
            ("user", users.users),
            ("token", users.tokens),
        )
        for name, entry in sorted(table.items())
    ]


def read_password(prompt_twice: bool = True) -> str:
    """The password: asked twice on a terminal, else one line of standard input."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("password: ")
    if prompt_twice and getpass.getpass("again: ") != first:
        raise ValueError("the two passwords differ")
    return first


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m drs.users", description="Users and API tokens of the page and the API")
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="config file (default: config.json beside the scripts)")
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", help="add a user (or set a user's password and role)")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, required=True)
    token = commands.add_parser("token", help="create an API token and print it once")
    token.add_argument("name")
    token.add_argument("--role", choices=ROLES, required=True)
    commands.add_parser("list", help="list users and tokens (never their secrets)")
    rm = commands.add_parser("remove", help="remove a user or token")
    rm.add_argument("name")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        path = config.users_file
        if args.command == "add":
            before = add_user(path, args.name, args.role, read_password())
            change = {"role": args.role} if before is None else {"role": args.role, "role_before": before.get("role")}
            audit.record(
                config, audit.os_user(), audit.USER_CHANGED if before else audit.USER_ADDED, args.name, audit.command_line(), change
            )
            print(f"user {args.name} ({args.role}) saved in {path}")
        elif args.command == "token":
            secret, replaced = issue_token(path, args.name, args.role)
            action = audit.TOKEN_REPLACED if replaced else audit.TOKEN_CREATED
            audit.record(config, audit.os_user(), action, args.name, audit.command_line(), {"role": args.role})
            print(secret)
            print(f"token {args.name} ({args.role}) saved in {path}; it is shown only now", file=sys.stderr)
        elif args.command == "list":
            print("\n".join(listing(read_users(path))) or f"no users or tokens in {path}")
        elif not (removed := remove(path, args.name)):
            print(f"error: no user or token {args.name} in {path}", file=sys.stderr)
            return 1
        else:
            for kind in removed:
                action = audit.USER_REMOVED if kind == "user" else audit.TOKEN_REMOVED
                audit.record(config, audit.os_user(), action, args.name, audit.command_line())
            print(f"removed {args.name} from {path}")
    except sqlite3.Error as exc:
        print(f"error: the change is saved in {path}, but the audit log {config.history_db} cannot be written: {exc}", file=sys.stderr)
        return 1
    except (ConfigError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError) else 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
