"""Every module in dataflows/ has each place docs/adding-a-dataflow.md lists, and the hand-kept tables match the code.

One test per step of that page, for every dataflow, naming what is missing and where it goes. The
README's and docs/outputs.md's tables of what each dataflow reads, what waits and what it writes are
written by hand, for readers; they are compared with what the built dataflow asks for (the topics
of its sources and sinks, and the steps its picture marks as waiting, as `make diagrams` reads them).
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from tests.makefile import planned
from utopia.cli import dataflow_names
from utopia.config import Topics
from utopia.io.kafka_io import kafka_entry_point
from utopia.models import CHANGELOGS, INPUT_RECORDS, OUTPUT_RECORDS
from utopia.tools.diagrams import pictured
from utopia.tools.story import TELLERS

ROOT = Path(__file__).resolve().parent.parent
GUIDE = "docs/adding-a-dataflow.md"
NAMES = dataflow_names()
KINDS = ("changelog", "alert", "window")


@dataclass(frozen=True)
class Built:
    """What the code of one dataflow says about it, read off the flow its `build` makes."""

    reads: frozenset[str]
    """Input topics without the prefix (`tickets`)."""
    writes: frozenset[str]
    """Outputs without prefix and suffix (`ticket-response`), the dead letters apart."""
    waiting: frozenset[str]
    """What waits for a reference, as the picture's waiting steps say it (`tickets`, `streams and events`)."""


@cache
def built(name: str) -> Built:
    shape, topics = pictured(name), Topics()
    waits = (phrase.split(" wait")[0] for step in shape.steps for phrase in step.waits)
    return Built(
        frozenset(topic.removeprefix(topics.input_prefix) for topic in shape.inputs()),
        frozenset(output for output in OUTPUT_RECORDS if topics.output(output) in shape.outputs()) - {"dead-letters"},
        # lookups, items and window counts wait for input order or a clock, not for another record
        frozenset(what for what in waits if set(what.split()) - {"and"} <= set(INPUT_RECORDS)),
    )


def table(path: str, header: str, text: str | None = None) -> list[list[str]]:
    """The rows of the table under the header row `header` in `path` (or in `text`, a part of it), cell by cell."""
    lines = (text if text is not None else (ROOT / path).read_text()).splitlines()
    assert header in lines, f"{path} has no table headed {header}"
    rows = []
    for line in lines[lines.index(header) + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def rows_of(name: str, rows: list[list[str]]) -> list[list[str]]:
    """The rows whose first cell names the dataflow (`` `sold_out` ``, or one of `` `a`, `b` ``)."""
    return [row for row in rows if name in re.findall(r"`(\w+)`", row[0])]


def words(cell: str) -> frozenset[str]:
    return frozenset(part.strip() for part in cell.split(",") if part.strip())


def section(name: str) -> str | None:
    """docs/outputs.md's `### <name>` section, up to the next section of its level or above."""
    text = (ROOT / "docs" / "outputs.md").read_text()
    if f"\n### {name}\n" not in text:
        return None
    return re.split(r"\n#{2,3} ", text.split(f"\n### {name}\n", 1)[1], maxsplit=1)[0]


# 1. The records


@pytest.mark.parametrize("name", NAMES)
def test_1_every_output_has_a_record_type_and_a_schema(name):
    shape, topics = pictured(name), Topics()
    known = {topics.output(output) for output in OUTPUT_RECORDS}
    unknown = [topic for topic in shape.outputs() if topic not in known]
    assert unknown == [], (
        f"{name} writes {unknown}: add them to OUTPUT_RECORDS in utopia/models.py ({GUIDE}#1-the-records)"
    )
    missing = [
        f"schemas/outputs/{output}.json"
        for output in sorted(built(name).writes)
        if not (ROOT / "schemas" / "outputs" / f"{output}.json").exists()
    ]
    assert missing == [], f"{name}: no {', '.join(missing)}: run `make schemas` ({GUIDE}#1-the-records)"


# 3. The module


@pytest.mark.parametrize("name", NAMES)
def test_3_the_module_says_what_it_finds_builds_a_flow_named_after_it_and_runs_on_kafka(name):
    module = importlib.import_module(f"dataflows.{name}")
    assert (module.__doc__ or "").strip(), f"dataflows/{name}.py has no docstring ({GUIDE}#3-the-module)"
    assert pictured(name).name == name, f"dataflows/{name}.py: name its flow Dataflow({name!r}) ({GUIDE}#3-the-module)"
    entry = getattr(module, "flow", None)
    assert getattr(entry, "__qualname__", None) == kafka_entry_point(module.build).__qualname__, (
        f"dataflows/{name}.py has no `flow = kafka_entry_point(build)` for python -m bytewax.run ({GUIDE}#3-the-module)"
    )


# 4. The make target


@pytest.mark.parametrize("name", NAMES)
def test_4_make_runs_it(name):
    target = name.replace("_", "-")
    assert f"-m bytewax.run dataflows.{name}" in planned(target), (
        f"`make {target}` does not run it: add {target} to DATAFLOWS in the Makefile ({GUIDE}#4-the-make-target)"
    )


# 5. The README


README_TABLE = "| dataflow (`dataflows/<name>.py`) | reads | writes |"


@pytest.mark.parametrize("name", NAMES)
def test_5_the_readme_scenario_table_says_what_it_reads_and_writes(name):
    rows = rows_of(name, table("README.md", README_TABLE))
    assert len(rows) == 1, f"README.md's scenario table has {len(rows)} rows for `{name}`, not 1 ({GUIDE}#5-the-readme)"
    _, reads, writes = rows[0]
    code = built(name)
    assert words(reads) == code.reads, f"README.md: {name} reads {sorted(code.reads)}, the table says {reads!r}"
    said = frozenset(re.findall(r"`([\w-]+)`:", writes))
    assert said == code.writes, f"README.md: {name} writes {sorted(code.writes)}, the table says {sorted(said)}"


# 6. docs/outputs.md


@pytest.mark.parametrize("name", NAMES)
def test_6_docs_outputs_says_what_it_reads(name):
    rows = rows_of(name, table("docs/outputs.md", "| dataflow | reads |"))
    assert rows, f"docs/outputs.md: no row for `{name}` in 'What each dataflow reads' ({GUIDE}#6-docsoutputsmd)"
    assert [words(row[1]) for row in rows] == [built(name).reads], (
        f"docs/outputs.md: {name} reads {sorted(built(name).reads)}, 'What each dataflow reads' says {rows}"
    )


@pytest.mark.parametrize("name", NAMES)
def test_6_docs_outputs_says_which_records_are_bad(name):
    rows = rows_of(name, table("docs/outputs.md", "| dataflow | a record is bad without |"))
    assert rows, (
        f"docs/outputs.md: no row for `{name}` in the table 'a record is bad without' ({GUIDE}#6-docsoutputsmd)"
    )


@pytest.mark.parametrize("name", NAMES)
def test_6_docs_outputs_says_what_waits(name):
    said = frozenset(row[1] for row in rows_of(name, table("docs/outputs.md", "| dataflow | what waits | for what |")))
    assert said == built(name).waiting, (
        f"docs/outputs.md, 'Waiting for references': in {name} {sorted(built(name).waiting) or 'nothing'} waits "
        f"(docs/dataflows.md), the table says {sorted(said) or 'nothing'} ({GUIDE}#6-docsoutputsmd)"
    )


@pytest.mark.parametrize("name", NAMES)
def test_6_docs_outputs_lists_each_output_with_its_kind(name):
    rows = rows_of(name, table("docs/outputs.md", "| dataflow | output | kind | key |"))
    listed = {row[1].strip("`"): row[2] for row in rows}
    assert set(listed) == built(name).writes, (
        f"docs/outputs.md, 'Outputs': {name} writes {sorted(built(name).writes)}, the table says {sorted(listed)}"
    )
    text = section(name)
    assert text is not None, f"docs/outputs.md has no section `### {name}` ({GUIDE}#6-docsoutputsmd)"
    assert "Not built yet." not in text
    own = {row[0].strip("`"): row[1] for row in table("docs/outputs.md", "| output | kind | key | value |", text)}
    assert own == listed, f"docs/outputs.md: the section {name} lists {own}, the table 'Outputs' {listed}"
    for output, kind in own.items():
        assert kind in KINDS, f"docs/outputs.md: {output}'s kind {kind!r} is none of {KINDS}"
        assert (kind == "changelog") == (output in CHANGELOGS), (
            f"docs/outputs.md gives {output} the kind {kind}, but utopia/models.py's CHANGELOGS "
            f"{'holds' if output in CHANGELOGS else 'lacks'} it ({GUIDE}#1-the-records)"
        )


def test_6_the_tables_name_only_dataflows_there_are():
    tables = [
        ("README.md", README_TABLE),
        ("docs/outputs.md", "| dataflow | reads |"),
        ("docs/outputs.md", "| dataflow | a record is bad without |"),
        ("docs/outputs.md", "| dataflow | what waits | for what |"),
        ("docs/outputs.md", "| dataflow | output | kind | key |"),
    ]
    for path, header in tables:
        named = {found for row in table(path, header) for found in re.findall(r"`(\w+)`", row[0])}
        assert named - {"dataflows"} <= set(NAMES), (
            f"{path}: {header} names {sorted(named - set(NAMES))}, not in dataflows/"
        )


# 7. The tests


@pytest.mark.parametrize("name", NAMES)
def test_7_its_tests_compare_it_with_a_reference_and_run_it_on_the_broker(name):
    own = ROOT / "tests" / f"test_{name}.py"
    assert own.exists(), f"no tests/test_{name}.py ({GUIDE}#7-the-tests)"
    assert "reference." in own.read_text(), (
        f"tests/test_{name}.py compares nothing with tests/reference.py: add a property test ({GUIDE}#7-the-tests)"
    )
    on_kafka = [
        path.name for path in (ROOT / "tests").glob("test_kafka*.py") if re.search(rf"\b{name}\b", path.read_text())
    ]
    assert on_kafka, (
        f"no tests/test_kafka*.py runs {name} on the broker: add it to test_kafka_replay.py ({GUIDE}#7-the-tests)"
    )


# 8. The demo


@pytest.mark.parametrize("name", NAMES)
def test_8_make_demo_tells_what_it_found(name):
    assert name in TELLERS, (
        f"make demo has no line for {name}: add a teller to TELLERS in utopia/tools/story.py ({GUIDE}#8-the-demo)"
    )
    assert re.search(rf"\bTELLERS\[\"{name}\"\]", (ROOT / "tests" / "test_story.py").read_text()), (
        f"tests/test_story.py does not test what make demo says of {name} ({GUIDE}#8-the-demo)"
    )


# 9. The picture


@pytest.mark.parametrize("name", NAMES)
def test_9_its_picture_is_drawn(name):
    assert f"\n## {name}\n" in (ROOT / "docs" / "dataflows.md").read_text(), (
        f"docs/dataflows.md has no picture of {name}: run `make diagrams` ({GUIDE}#9-the-picture)"
    )


# The checks themselves


def test_what_the_code_says_of_a_dataflow():
    assert built("suggested_events_genre") == Built(
        frozenset({"artists", "events", "streams", "tickets"}),
        frozenset({"genre-event-suggestions"}),
        frozenset({"tickets", "streams and events"}),
    )
    assert built("most_streamed_artists").waiting == frozenset()  # its window counts wait for the clock only


def test_a_table_is_read_cell_by_cell_and_its_rows_by_dataflow():
    text = "x\n| dataflow | what |\n|---|---|\n| `a`, `b` | one, two |\n| `c` | three |\n\nafter\n"
    rows = table("x.md", "| dataflow | what |", text)
    assert rows == [["`a`, `b`", "one, two"], ["`c`", "three"]]
    assert rows_of("b", rows) == [["`a`, `b`", "one, two"]]
    assert words(rows[0][1]) == {"one", "two"}
