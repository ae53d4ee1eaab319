"""`GET /audit`: the audit log (drs/history/audit.py) for operators, newest first; `?limit=` shows more.

A blueprint of the web app rendered from templates/audit.html; it reads the log through the config of the
worker's Service (drs/web/service.py) and writes nothing. Who may open it is drs/web/auth.py's table.
See docs/security.md#the-audit-log.
"""

from __future__ import annotations

from flask import Blueprint, render_template, request

from drs.history import audit as audit_log
from drs.web.service import service

audit = Blueprint("audit", __name__, template_folder="templates")
SHOWN, MOST = 200, 5000


@audit.get("/audit")
def audit_page() -> str:
    config = service().config
    limit = min(max(request.args.get("limit", SHOWN, type=int) or SHOWN, 1), MOST)
    return render_template("audit.html", events=audit_log.events(config, request.args.get("since"), limit), limit=limit)
