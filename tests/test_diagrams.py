"""docs/dataflows.md shows the topologies the code builds (regenerate with `make diagrams`)."""

from utopia.diagrams import TARGET, rendered


def test_diagrams_are_up_to_date():
    assert TARGET.read_text() == rendered(), "docs/dataflows.md is out of date: run `make diagrams`"

