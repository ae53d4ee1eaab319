"""`python -m drs.audit`, the command operators know for the audit log; the module is drs/history/audit.py."""

from drs.history import audit

if __name__ == "__main__":
    raise SystemExit(audit.main())
