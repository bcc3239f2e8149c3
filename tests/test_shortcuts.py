"""Facts that every worker learns (`everywhere`), and records that go straight on where they are known (`shortcut`).

must_see_venue uses both: every worker learns each event's venue, and a ticket whose event came
before it goes straight to its venue instead of through its event's step (utopia.rules.venues).
"""

import threading
from collections import defaultdict

import bytewax.operators as op
import pytest
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink

from utopia.io.testing import TestingIO, kafka_records, run
from utopia.models import Event, Ticket
from utopia.steps import everywhere, read, shortcut

READS = {Event: [], Ticket: ["eventid"]}


def event(eventid):
    return Event(eventid, venueid="v1", capacity=10)


def ticket(ticketid, eventid):
    return Ticket(ticketid, customerid="c1", eventid=eventid)


# At positions 0 to 5 of the one lane of TestingIO.
RECORDS = [ticket("t1", "e1"), event("e1"), ticket("t2", "e1"), event("e2"), ticket("t3", "e2"), event("e1")]


def test_each_worker_learns_every_event_in_input_order(workers):
    learned = defaultdict(list)  # worker thread -> (position, event id), as learned

    def learn(placed):
        learned[threading.get_native_id()].extend((p.position, p.value.id) for p in placed)

    flow = Dataflow("learning")
    everywhere(
        "events_everywhere", read("read", flow, TestingIO(kafka_records(RECORDS), batch_size=2), READS), Event, learn
    )
    run(flow, workers)
    assert len(learned) == workers
    assert all(seen == [(1, "e1"), (3, "e2"), (5, "e1")] for seen in learned.values())


@pytest.mark.parametrize("batch_size", [1, 2, 6])
def test_records_that_go_straight_replace_theirs_and_other_steps_read_the_batch_as_it_was_read(batch_size):
    calls = []

    def tickets_of_e2_in_capitals(tickets, start, indices):
        calls.append([(start + i, t.id) for t, i in zip(tickets, indices)])
        return [t.id.upper() if t.eventid == "e2" else t for t in tickets]

    def placed_ids(batch):
        return [(batch.position + i, getattr(r, "id", r)) for i, r in enumerate(batch.records)]

    after, before = [], []
    flow = Dataflow("shortcuts")
    records = read("read", flow, TestingIO(kafka_records(RECORDS), batch_size=batch_size), READS)
    straight = shortcut("straight", records, Ticket, tickets_of_e2_in_capitals)
    op.output("after", op.flat_map("ids_after", straight, placed_ids), TestingSink(after))
    op.output("before", op.flat_map("ids_before", records, placed_ids), TestingSink(before))
    run(flow)
    assert sorted(after) == [(0, "t1"), (1, "e1"), (2, "t2"), (3, "e2"), (4, "T3"), (5, "e1")]
    assert sorted(before) == [(0, "t1"), (1, "e1"), (2, "t2"), (3, "e2"), (4, "t3"), (5, "e1")]
    assert sorted(pair for call in calls for pair in call) == [(0, "t1"), (2, "t2"), (4, "t3")]  # tickets only
