"""docs/dataflows.md shows the topologies the code builds (regenerate with `make diagrams`).

Each picture names exactly the topics its dataflow reads and writes, as another IO sees the flow
ask for them, and marks the steps where records wait for others.
"""

import importlib
import re

import pytest

from utopia.cli import dataflow_names
from utopia.config import Topics
from utopia.io.testing import TestingIO
from utopia.tools.diagrams import TARGET, mermaid, pictured, rendered

SYNTAX = re.compile(
    r"flowchart LR"
    r"|\w+\[\([\w-]+\)\]"  # a topic
    r'|\w+\["[^"]+"\]'  # a step
    r'|\w+ (-->|-\.->|-- "[\w ]+" -->) \w+'  # an arrow
    r"|classDef \w+ [\w:#,-]+"
    r"|class [\w,]+ \w+"
)


def test_diagrams_are_up_to_date():
    assert TARGET.read_text() == rendered(), "docs/dataflows.md is out of date: run `make diagrams`"


@pytest.mark.parametrize("name", dataflow_names())
def test_each_picture_names_exactly_the_topics_its_dataflow_reads_and_writes(name):
    io, topics = TestingIO([]), Topics()
    importlib.import_module(f"dataflows.{name}").build(io)
    picture = mermaid(pictured(name))
    pictured_topics = set(re.findall(r"\[\(([\w-]+)\)\]", picture))
    assert pictured_topics == set(io.inputs) | {topics.output(output) for output in io.outputs}
    assert topics.output("dead-letters") in pictured_topics


@pytest.mark.parametrize("name", dataflow_names())
def test_pictures_are_plain_mermaid_flowcharts(name):
    for line in mermaid(pictured(name)).splitlines():
        assert SYNTAX.fullmatch(line), line


@pytest.mark.parametrize(
    ("name", "waiting"),
    [
        ("customer_stream_count", {}),
        ("purchase_event_ticket", {"ticket_desk_per_event": "tickets wait for their event's capacity"}),
        (
            "sold_out",
            {
                "sales_per_event": "tickets wait for their event's capacity",
                "email_top_streamers": "lookups wait for the input before them",
            },
        ),
        ("most_streamed_artists", {"trending_per_hour": "counts wait for their 1 h window to close"}),
        (
            "suggested_events_location",
            {
                "tickets_meet_event_and_home": "tickets wait for their event's capacity, then their buyer's home",
                "sales_per_event": "items wait for the input before them",
                "neighbours_of_popular_purchases": "lookups wait for the input before them",
            },
        ),
    ],
)
def test_the_steps_where_records_wait_are_marked_with_what_waits(name, waiting):
    picture = mermaid(pictured(name))
    marked = re.search(r"^class ([\w,]+) waits$", picture, re.MULTILINE)
    assert set(marked.group(1).split(",") if marked else ()) == set(waiting)
    for step, words in waiting.items():
        assert re.search(rf'^{step}\["{step}<br/>[^"]*{re.escape(words)}', picture, re.MULTILINE)


@pytest.mark.parametrize("name", dataflow_names())
def test_every_step_that_dead_letters_waiting_records_is_marked(name):
    shape = pictured(name)
    dead_letters = Topics().output("dead-letters")
    for step in shape.steps:
        if dead_letters in step.writes and not step.reads:  # not the read step's bad records: waiting ones
            assert step.waits, step.name


def test_a_step_that_learns_a_table_points_to_the_step_that_reads_it():
    lines = mermaid(pictured("must_see_venue")).splitlines()
    assert "venues_events_tickets --> venue_of_each_event_everywhere" in lines
    assert 'venue_of_each_event_everywhere -- "learned" --> tickets_straight_to_known_venues' in lines
