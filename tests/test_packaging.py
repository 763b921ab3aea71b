"""CI's lowest versions (.ci/constraints-lowest.txt) are pyproject.toml's lower bounds."""

from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from 3.11")

ROOT = Path(__file__).resolve().parents[1]


def lower_bounds() -> dict[str, Version]:
    """``name: version`` for every ``>=`` bound of the dependencies and the test extra."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    pending, seen, bounds = list(project["dependencies"]), set(), {}
    pending += ["ldam-sklearn[test]"]
    while pending:
        req = Requirement(pending.pop())
        if req.name == project["name"]:
            for extra in req.extras - seen:
                seen.add(extra)
                pending += extras[extra]
            continue
        for spec in req.specifier:
            if spec.operator == ">=":
                bounds[req.name] = Version(spec.version)
    return bounds


def constraints() -> dict[str, Version]:
    pins = {}
    for line in (ROOT / ".ci" / "constraints-lowest.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", line
            pins[req.name] = Version(spec.version)
    return pins


def test_every_lower_bound_is_pinned_at_its_bound():
    assert constraints() == lower_bounds()


def test_the_bounds_cover_the_runtime_dependencies():
    # A dependency without a lower bound would escape the lowest-versions run.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    unbounded = [r for r in project["dependencies"] if ">=" not in r]
    assert unbounded == []
