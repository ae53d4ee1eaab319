"""The audit log: who did what, when and from where (sign-ins, sign-outs, users and tokens, deployments, rollbacks):
one row per event in the run history's database (table `audit`, migration 7 of drs/history/db.py), append-only: SQLite
triggers refuse UPDATE and DELETE. Never a password or a token, only names. Operators read it on `/audit`, anyone
with the database from the command line: `python -m drs.audit [--since 2026-12-01] [--limit 50]`, newest first. See docs/security.md.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import socket
import sqlite3
import sys
from collections.abc import Sequence
from typing import Any, TypedDict

from drs.core.errors import ConfigError
from drs.core.layout import utc_now
from drs.core.settings import DEFAULT_CONFIG, Config, load_config
from drs.history import db

SIGN_IN = "sign-in"
SIGN_IN_FAILED = "sign-in failed"
SIGN_OUT = "sign-out"
USER_ADDED = "user added"
USER_CHANGED = "user changed"  # a new password or role
USER_REMOVED = "user removed"
TOKEN_CREATED = "token created"
TOKEN_REPLACED = "token replaced"
TOKEN_REMOVED = "token removed"
DEPLOYED = "deployed"
FORCED_DEPLOYMENT = "forced deployment"
ROLLED_BACK = "rolled back"


class AuditEvent(TypedDict):
    """One `audit` row, its details parsed (free-form: what the event names, never a secret)."""

    id: int
    at: str
    actor: str
    action: str
    target: str
    origin: str
    details: dict[str, Any]


def os_user() -> str:
    """Who runs this command: the login name, or the uid where the system has no name for it (a container)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return f"uid {os.getuid()}"


def command_line() -> str:
    """Where a command-line change came from: this machine."""
    return f"command line on {socket.gethostname()}"


def record(config: Config, actor: str, action: str, target: str, where: str, details: dict[str, Any] | None = None) -> int:
    """Append one event; its id. `details` must hold no secret (callers pass names, roles, versions, scores)."""
    with db.writing(config.history_db) as conn:
        cursor = conn.execute(
            "INSERT INTO audit (at, actor, action, target, origin, details) VALUES (?, ?, ?, ?, ?, ?)",
            (utc_now(), actor, action, target, where, json.dumps(details or {}, sort_keys=True, default=str)),
        )
        return int(cursor.lastrowid or 0)


def events(config: Config, since: str | None = None, limit: int | None = 100) -> list[AuditEvent]:
    """The newest events first (at most `limit`; None: all), those at or after `since` (an ISO time or date) only."""
    with db.reading(config.history_db, since=db.AUDIT) as conn:
        if conn is None:  # no history yet, or an older file this process may not bring up to date: no event yet
            return []
        query = "SELECT id, at, actor, action, target, origin, details FROM audit"
        params: list[str | int] = []
        if since:
            query += " WHERE at >= ?"
            params.append(since)
        query += " ORDER BY id DESC"
        if limit is not None:
            query += " LIMIT ?"
            params.append(limit)
        return [
            AuditEvent(
                id=r["id"],
                at=r["at"],
                actor=r["actor"],
                action=r["action"],
                target=r["target"],
                origin=r["origin"],
                details=json.loads(r["details"]),
            )
            for r in conn.execute(query, params)
        ]


def line(event: AuditEvent) -> str:
    details = " ".join(f"{k}={v}" for k, v in event["details"].items())
    return f"{event['at']}  {event['actor']:16} {event['action']:18} {event['target']:20} {event['origin']}" + (
        f"  {details}" if details else ""
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m drs.audit", description="The audit log, newest first")
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="config file (default: config.json beside the scripts)")
    parser.add_argument("--since", help="only events at or after this time (e.g. 2026-12-01 or 2026-12-01T09:00)")
    parser.add_argument("--limit", type=int, default=100, help="at most this many events (default 100; 0: all)")
    args = parser.parse_args(argv)
    try:
        found = events(load_config(args.config), args.since, args.limit or None)
    except (ConfigError, OSError, sqlite3.Error) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError) else 1
    print("\n".join(line(e) for e in found) or "no audit events")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
