"""The failures a user sees as one line: every command line turns these into a message and an exit code.

Raised where the cause is known (a bad config key, a data file that fails its check, a missing deployment, a stage
that cannot go on) and caught once, at the edge of each command (drs/core/cli.py), so no user sees a traceback for
them; see docs/architecture.md (Principles).
"""

from __future__ import annotations


class ConfigError(Exception):
    """A config file that cannot be used (exit 2)."""


class StageError(Exception):
    """A stage could not do its work; the message says why, for the user (exit 1)."""


class DeploymentError(Exception):
    """A deployment that is missing, incomplete or does not match its checksums (exit 1)."""


class DataError(Exception):
    """Data that cannot be used; str() is a one-line message naming file and problem (exit 1)."""

    def __init__(self, source: str, problem: str, bad_rows: int = 0):
        super().__init__(f"{source}: {problem}")
        self.source = source
        self.problem = problem
        self.bad_rows = bad_rows
