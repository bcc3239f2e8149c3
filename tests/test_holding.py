"""Records that wait for a reference are counted, survive a snapshot, and the count is logged while tailing."""

import logging
import pickle
import sys

from confluent_kafka import Message

from utopia.codec import InRecord
from utopia.models import Ticket
from utopia.rules.genres import HeldForGenre
from utopia.steps import Placed, wire
from utopia.steps.holding import WAITING_LOG, HeldUntilKnown, Sourced, WaitingLog


def sourced(n: int) -> Sourced[Ticket]:
    return InRecord("data-demo-tickets", 0, n, f"t{n}", b"{}"), Ticket(f"t{n}", eventid="e1")


def test_held_records_are_released_once_in_input_order_and_counted_while_held():
    before = HeldUntilKnown.waiting_in_process
    held = HeldUntilKnown()
    for n in range(3):
        held.hold(sourced(n))
    assert (len(held), HeldUntilKnown.waiting_in_process - before) == (3, 3)
    assert [ticket.id for _, ticket in held.release()] == ["t0", "t1", "t2"]
    assert (held.release(), HeldUntilKnown.waiting_in_process - before) == ([], 0)


def test_records_resumed_from_a_snapshot_count_again():
    before = HeldUntilKnown.waiting_in_process
    held = HeldUntilKnown()
    held.hold(sourced(1))
    resumed = pickle.loads(pickle.dumps(held))
    assert [raw.offset for raw, _ in resumed.waiting] == [1]
    assert HeldUntilKnown.waiting_in_process - before == 2  # the original and the resumed copy
    resumed.release()
    held.release()


def test_the_waiting_count_is_logged_when_it_changed(caplog, monkeypatch):
    monkeypatch.setattr(HeldUntilKnown, "waiting_in_process", 0)
    log = WaitingLog(every_s=0)
    with caplog.at_level(logging.WARNING, "utopia"):
        log.tick()  # nothing waits: nothing to say
        HeldUntilKnown.waiting_in_process = 7
        log.tick()
        log.tick()  # unchanged: said once
        HeldUntilKnown.waiting_in_process = 0
        log.tick()
    assert [r.getMessage() for r in caplog.records] == [
        "7 record(s) wait for a record they refer to",
        "0 record(s) wait for a record they refer to",
    ]


def test_one_line_says_how_many_wait_in_the_process_however_many_steps_hold_records(caplog, monkeypatch):
    """suggested_events_genre holds streams (for their artist) and tickets (for their event) in different steps."""
    from dataflows import suggested_events_genre
    from utopia.io.testing import TestingIO, kafka_records, run
    from utopia.models import Stream, Ticket

    monkeypatch.setattr(WAITING_LOG, "next_at", 0.0)  # due now, then not for every_s
    # As in a new process: nothing logged or waiting yet, and the lines reach caplog even after a test in this process
    # has called configure_logging (which stops them at the "utopia" logger).
    monkeypatch.setattr(WAITING_LOG, "logged", 0)
    monkeypatch.setattr(HeldUntilKnown, "waiting_in_process", 0)
    monkeypatch.setattr(logging.getLogger("utopia"), "propagate", True)
    io = TestingIO(kafka_records([Stream("s1", "c1", "a1"), Ticket("t1", "c1", "e1")]), batch_size=1)
    with caplog.at_level(logging.WARNING, "utopia"):
        run(suggested_events_genre.build(io), 1)
    assert [r.getMessage() for r in caplog.records if "wait for a record" in r.getMessage()] == [
        "1 record(s) wait for a record they refer to"
    ]


def test_a_held_message_from_another_process_keeps_only_its_own_record_not_its_whole_bundle():
    # Decoded, the messages of a run from another process are a view into the whole bundle they came in.
    messages = [
        Message(
            topic="data-demo-tickets", partition=0, offset=n, key=f"t-{n}".encode(), value=b"x" * 100, timestamp=(1, n)
        )
        for n in range(1000)
    ]
    bundle = wire.encode([("0", [("e-1", (m, Ticket(f"t-{n}", "c-1", "e-1"))) for n, m in enumerate(messages)])])
    [(_, pairs)] = wire.decode(bundle)
    held: HeldUntilKnown[Ticket] = HeldUntilKnown()
    held.hold(pairs[7][1])
    held.hold(Placed(1, 8, pairs[8][1]))
    for_genre = HeldForGenre()
    for_genre.hold(Placed(1, 9, pairs[9][1]))
    del pairs
    assert sys.getrefcount(bundle) == 2  # this name, and the call's argument: nothing held keeps it
    (first, _), placed = held.release()
    assert first == InRecord("data-demo-tickets", 0, 7, "t-7", b"x" * 100, 7)
    assert placed.value[0] == InRecord("data-demo-tickets", 0, 8, "t-8", b"x" * 100, 8) and placed.position == 8
    [genre] = for_genre.release()
    assert genre.value[0] == InRecord("data-demo-tickets", 0, 9, "t-9", b"x" * 100, 9)
