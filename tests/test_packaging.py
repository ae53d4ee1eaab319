"""pyproject.toml declares what the package needs (compatible ranges); requirements.txt pins the tested set inside them."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent


def pinned(path: Path) -> dict[str, Requirement]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    found = [Requirement(line) for line in lines if line and not line.startswith("-")]
    return {canonicalize_name(r.name): r for r in found}


def declared() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {canonicalize_name(r.name): r for r in map(Requirement, project["dependencies"])}


def test_every_pinned_runtime_package_is_declared_in_a_range_that_holds_its_pin() -> None:
    pins, ranges = pinned(ROOT / "requirements.txt"), declared()
    assert sorted(pins) == sorted(ranges)
    for name, pin in pins.items():
        (exact,) = [spec.version for spec in pin.specifier if spec.operator == "=="]
        assert ranges[name].specifier.contains(exact), f"{name}: pinned {exact}, declared {ranges[name].specifier}"
        assert ranges[name].extras == pin.extras, name
        assert any(spec.operator == "<" for spec in ranges[name].specifier), f"{name}: no upper bound"


def test_the_test_only_packages_are_not_runtime_dependencies() -> None:
    dev = set(pinned(ROOT / "requirements-dev.txt"))
    assert dev & set(declared()) == set()


def test_no_package_registry_host_is_spelled_in_the_repository() -> None:
    """The index is the one pip is configured with (drs/reports/packages.py `index_url`); the hosts come from pip."""
    import subprocess

    from pip._internal.models.index import PyPI

    hosts = {PyPI.netloc, PyPI.file_storage_domain}
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    spelled = sorted(
        name for name in tracked if name and (ROOT / name).is_file() and any(host.encode() in (ROOT / name).read_bytes() for host in hosts)
    )
    assert spelled == []
