"""The floors and exclusions in pyproject.toml are met by what this suite runs on: a floor is a
version that was run, so the environment the tests pass in must satisfy every declared one."""

import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def declared() -> list[Requirement]:
    """The runtime and test requirements that apply to this Python and platform."""
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]]
    return [r for r in reqs if r.marker is None or r.marker.evaluate()]


@pytest.mark.parametrize("req", declared(), ids=str)
def test_the_installed_version_meets_the_declared_floor(req: Requirement) -> None:
    try:
        installed = Version(metadata.version(req.name))
    except metadata.PackageNotFoundError:
        pytest.fail(f"{req.name} is declared ({req}) but not installed")
    # a local build (torch's '+cu130') is the release it builds
    assert req.specifier.contains(Version(installed.public), prereleases=True), \
        f"{req.name} {installed} does not meet {req}"


def test_every_floor_is_stated() -> None:
    """Every dependency has a floor: an open range would let pip keep any old release."""
    assert [str(r) for r in declared() if not any(s.operator in (">=", "==", "~=") for s in r.specifier)] == []
