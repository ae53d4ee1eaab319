"""`python -m drs.users`, the command operators know for users and API tokens; the module is drs/web/users.py."""

from drs.web import users

if __name__ == "__main__":
    raise SystemExit(users.main())
