"""Time stamps as the system reads them: the one rule for an ISO stamp in a record; pure, standard library only.

Every stamp the pipeline writes is UTC (`datetime.now(UTC).isoformat()`); a stamp without an offset (an
older record, a hand-written one) is read as UTC too, and one with another offset is converted to UTC, so
stamps from different writers compare and subtract without a naive/aware error. Shared by the alerts
(drs/alerts/rules.py) and the web page (drs/web/); see docs/architecture.md.
"""

from __future__ import annotations

from datetime import UTC, datetime


def parse_time(value: object) -> datetime | None:
    """An ISO stamp (or a datetime) as an aware UTC datetime: naive means UTC, other offsets are converted; None otherwise."""
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value))
        except (TypeError, ValueError):
            return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def when(value: object, unknown: str = "-") -> str:
    """A time as people read it, '2026-11-25 13:35:15 UTC' (by the rule above); `unknown` for nothing, and text that
    is not a time as it is. The page, the PDF and the alerts write every time this way (the alerts' `unknown` is
    'an unknown time')."""
    if not value:
        return unknown
    moment = parse_time(value)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment is not None else str(value)
