"""constraints.txt, what `make install` installs, still fits pyproject.toml: an edited requirement needs `make lock`."""

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).parent.parent


def pins(text: str) -> dict[str, str]:
    """`name==version` lines by canonical name; comments and blank lines skipped."""
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return {canonicalize_name(name): version for name, version in (line.split("==", 1) for line in lines)}


def unmet(project: dict, pinned: dict[str, str]) -> list[str]:
    """The requirements of the project and of the extras `make install` asks for that no pin satisfies."""
    extras = project["optional-dependencies"]
    wanted = project["dependencies"] + extras["test"] + extras["lint"]
    missing = []
    for requirement in map(Requirement, wanted):
        version = pinned.get(canonicalize_name(requirement.name))
        if version is None or not requirement.specifier.contains(version, prereleases=True):
            missing.append(f"{requirement} (pinned: {version})")
    return missing


def test_every_requirement_is_pinned_to_a_version_it_allows():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pinned = pins((ROOT / "constraints.txt").read_text())
    assert unmet(project, pinned) == [], "run `make lock`"


def test_a_requirement_no_pin_satisfies_is_named():
    project = {
        "dependencies": ["msgspec>=0.18,<0.23", "rich>=13"],
        "optional-dependencies": {"test": ["pytest>=8"], "lint": ["ruff>=0.18"]},
    }
    pinned = pins("# a comment\nmsgspec==0.23.1\nRich==13.0\n\npytest==9.0\n")
    assert unmet(project, pinned) == ["msgspec<0.23,>=0.18 (pinned: 0.23.1)", "ruff>=0.18 (pinned: None)"]
