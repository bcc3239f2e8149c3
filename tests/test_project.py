"""Every dataflow is where a user looks for it: the README's table, a make target, its section in docs/outputs.md."""

import re
import subprocess
from pathlib import Path

import pytest

from utopia.cli import dataflow_names

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", dataflow_names())
def test_each_dataflow_is_documented_and_runnable_with_make(name):
    readme = (ROOT / "README.md").read_text()
    assert re.search(rf"^\| `{name}`", readme, re.MULTILINE), f"README's scenario table has no row for {name}"
    targets = subprocess.run(["make", "-n", name.replace("_", "-")], cwd=ROOT, capture_output=True, text=True)
    assert f"-m bytewax.run dataflows.{name}" in targets.stdout, f"no make target for {name}: {targets.stderr}"
    outputs = (ROOT / "docs" / "outputs.md").read_text()
    section = outputs.split(f"### {name}\n", 1)[1].split("\n### ", 1)[0]
    assert "Not built yet." not in section
