"""Numbers, times and drift fields as people read them; pure, standard library only.

Shared by the PDF report (drs/reports/pdf.py) and the web page (drs/web/page.py),
so both write a number, a time or a drift verdict the same way.

See docs/reports.md (The PDF report; Plain words on the page).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NotRequired, TypedDict

from drs.core.times import when as when  # the one way to write a time, re-exported for its callers


class DependencyCheck(TypedDict):
    """What the dependency check knows (diagnostics.json's `dependency_check`, GET /diagnostics)."""

    status: str  # complete, partial or unknown
    packages: int
    outdated: int
    unknown: int
    unknown_because: dict[str, int]  # reason -> how many packages


class PackageRow(TypedDict):
    """One requirement as the dependency check found it (drs/reports/packages.py; diagnostics.json's `dependencies`).

    `newest_status` and `newest_unknown_because` are missing in rows written before they were recorded."""

    package: str
    required: str | None
    installed: str | None
    newest: str | None  # None: unknown
    newest_status: NotRequired[str]  # known or unknown
    newest_unknown_because: NotRequired[str | None]
    differs_from_pin: bool
    outdated: bool | None  # None: not known (the newest version is unknown)


def number(value: Any) -> str:
    """Round for reading: large numbers to 1 decimal with separators, small ones to 3."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if not isinstance(value, float):
        return str(value)
    if value != value:  # NaN
        return "-"
    if abs(value) >= 100:
        return f"{value:,.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    if 0 < abs(value) < 0.001:  # p-values and the like keep their size
        return f"{value:.1e}"
    return f"{value:.3f}"


def score(value: Any) -> str:
    return "-" if value is None else f"{float(value):.4f}"


def seconds(value: Any) -> str:
    if value is None:
        return "-"
    value = float(value)
    return f"{value:.1f} s" if value >= 10 else f"{value:.3f} s"


def threshold_of(check: dict[str, Any]) -> Any:
    """The F1 below which the drift test said drift (the raw test's is the deployed score)."""
    return check.get("threshold", check.get("deployed_score"))


def flag(value: Any) -> str:
    return {True: "drift", False: "ok"}.get(value, "-")


def dependency_status(dep: PackageRow) -> str:
    if not dep.get("installed"):
        return "not installed"
    if dep.get("outdated"):
        return "outdated"
    if dep.get("differs_from_pin"):
        return "differs from pin"
    return "up to date" if dep.get("newest") else "newest unknown"


def dependency_check(dependencies: Sequence[PackageRow]) -> DependencyCheck:
    """What the dependency check knows: status complete (every newest version known), partial or unknown, with counts
    and why the unknown ones are unknown (reason -> packages); rows written before reasons were recorded say 'not recorded'."""
    unknown = [d for d in dependencies if not d.get("newest")]
    because: dict[str, int] = {}
    for dep in unknown:
        why = str(dep.get("newest_unknown_because") or "why was not recorded")
        because[why] = because.get(why, 0) + 1
    status = "unknown" if dependencies and len(unknown) == len(dependencies) else "partial" if unknown else "complete"
    return {
        "status": status,
        "packages": len(dependencies),
        "outdated": sum(1 for d in dependencies if d.get("outdated") and d.get("newest")),
        "unknown": len(unknown),
        "unknown_because": because,
    }


def reasons(check: DependencyCheck) -> str:
    """Why the unknown newest versions are unknown: one reason, or each with its count."""
    because = check["unknown_because"]
    return "; ".join(why if len(because) == 1 else f"{why}: {count}" for why, count in because.items())


def dependency_words(dependencies: Sequence[PackageRow]) -> str:
    """The dependency check in one sentence (the page and the PDF): how many are outdated, and what is not known."""
    check = dependency_check(dependencies)
    total, unknown = check["packages"], check["unknown"]
    if check["status"] == "unknown":
        return f"The newest version of every package could not be looked up (all {total}): {reasons(check)}."
    if not unknown:
        return f"{check['outdated']} of {total} pinned packages have a newer release."
    return (
        f"{check['outdated']} of the {total - unknown} packages looked up have a newer release;"
        f" the newest version of some ({unknown} of {total}) could not be looked up: {reasons(check)}."
    )


def outdated_line(dependencies: Sequence[PackageRow]) -> str:
    """The log's 'outdated packages: ...': their names, and 'none' only when every newest version is known."""
    check = dependency_check(dependencies)
    outdated = ", ".join(str(d.get("package")) for d in dependencies if d.get("outdated") and d.get("newest"))
    if check["status"] == "complete":
        return outdated or "none"
    return (f"{outdated}; " if outdated else "") + f"unknown for {check['unknown']} of {check['packages']} ({reasons(check)})"


def file_span(files: Sequence[str], limit: int = 3) -> str:
    """'a.csv, b.csv', or 'a.csv .. z.csv (12 files)' when there are more than `limit`."""
    if len(files) <= limit:
        return ", ".join(files) or "-"
    return f"{files[0]} .. {files[-1]} ({len(files)} files)"
