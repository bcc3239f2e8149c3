"""How one worker's Kafka partitions are released in timestamp order (docs/outputs.md#ordering).

The consumers are scripted: each fetch answers the next entry of its partition's script, so a
slow fetch, a quiet topic and the end of a partition are played out on a clock the test moves.
"""

import pytest
from confluent_kafka import KafkaError, KafkaException, Message

from utopia.codec import Decoder
from utopia.config import Topics
from utopia.io import kafka_source
from utopia.io.kafka_source import PartitionReader, _Merger
from utopia.models import Stream

MAX_IDLE_S = 1.0
EOF = "end"
REFUSED = "refused"  # Kafka no longer lets the principal read the topic
NOTHING = ()


class ScriptedConsumer:
    """Answers each `consume` with the next fetch of its script; after the last, nothing."""

    def __init__(self, config: dict):
        self.topic = config["topic"]
        self.fetches = list(config["script"])
        self.offset = 0
        self.calls: list[str] = []

    def list_topics(self, topic: str, timeout: float) -> None:
        self.calls.append(f"metadata of {topic}")

    def assign(self, partitions) -> None:
        self.calls.append(f"assign {partitions[0].topic} from {partitions[0].offset}")

    def consume(self, max_records: int, timeout: float) -> list[Message]:
        fetch = self.fetches.pop(0) if self.fetches else NOTHING
        messages = []
        for item in fetch:
            if item == EOF:
                messages.append(Message(error=KafkaError(KafkaError._PARTITION_EOF)))
            elif item == REFUSED:
                messages.append(Message(error=KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED)))
            else:
                messages.append(
                    Message(topic=self.topic, partition=0, offset=self.offset, value=b"{}", timestamp=(1, item))
                )
                self.offset += 1
        return messages

    def close(self) -> None:
        pass


class Worker:
    """A merger over scripted partitions, on a clock the test moves."""

    def __init__(self, monkeypatch, scripts: dict[str, list], tail: bool = True):
        self.now = 100.0
        monkeypatch.setattr(kafka_source, "Consumer", ScriptedConsumer)
        monkeypatch.setattr(kafka_source.time, "monotonic", lambda: self.now)
        self.merger = _Merger(batch_size=100, tail=tail, max_idle_s=MAX_IDLE_S)
        for topic, script in scripts.items():
            self.merger.add(PartitionReader(f"{topic}-00000", {"topic": topic, "script": script}, topic, 0, 0))

    def release(self, after_s: float = 0.0) -> list[tuple[str, int]]:
        """(topic, timestamp) of the records released after `after_s` more seconds."""
        self.now += after_s
        return [(m.topic(), m.timestamp()[1]) for batch in self.merger.release() for m in batch.messages]


def test_a_partition_with_records_not_fetched_yet_holds_the_others_back_however_slow_its_fetch(monkeypatch):
    # The events partition has fetched one record; its next fetch takes a minute (a loaded broker).
    worker = Worker(
        monkeypatch,
        {
            "streams": [[10, 20, 30, 40], [EOF]],
            "events": [[15], NOTHING, NOTHING, NOTHING, [25, 35, EOF]],
        },
    )
    assert worker.release() == [("streams", 10)]
    assert worker.release(after_s=20) == []
    assert worker.release(after_s=20) == []
    assert worker.release(after_s=20) == []
    assert worker.release() == [("events", 15), ("streams", 20), ("events", 25), ("streams", 30)]


def test_a_quiet_partition_fetched_to_its_end_holds_the_others_back_for_the_idle_time_only(monkeypatch):
    worker = Worker(monkeypatch, {"streams": [[10, 20, 30]], "emails": [[5, EOF]]})
    assert worker.release() == []  # another email may come at 5 ms still
    assert worker.release(after_s=MAX_IDLE_S / 2) == []
    # streams has not reached its end: its next record may come at 30 ms.
    assert worker.release(after_s=MAX_IDLE_S / 2) == [("emails", 5), ("streams", 10), ("streams", 20)]


def test_a_partition_empty_from_the_start_waits_only_the_idle_time(monkeypatch):
    worker = Worker(monkeypatch, {"streams": [[10, 20]], "emails": [[EOF]]})
    assert worker.release() == []
    assert worker.release(after_s=MAX_IDLE_S) == [("streams", 10)]


def test_a_quiet_partition_that_gets_records_again_holds_the_others_back_again(monkeypatch):
    worker = Worker(monkeypatch, {"streams": [[10, 20], NOTHING, [30, 40]], "emails": [[5, EOF], NOTHING, [25]]})
    assert worker.release() == []
    assert worker.release(after_s=MAX_IDLE_S) == [("emails", 5), ("streams", 10)]
    # A new email, not followed by the end: more may be on the broker.
    assert worker.release(after_s=MAX_IDLE_S) == [("streams", 20)]
    assert worker.release(after_s=60) == []


@pytest.mark.parametrize("tail", [True, False])
def test_a_partition_fetched_to_its_end_is_done_when_not_tailing(monkeypatch, tail):
    worker = Worker(monkeypatch, {"streams": [[10, 20, EOF]], "events": [[15, EOF]]}, tail=tail)
    released = worker.release()
    if tail:  # both may still get records: the newest of each waits until the other is idle
        assert released == [("streams", 10)]
        assert worker.release(after_s=MAX_IDLE_S) == [("events", 15), ("streams", 20)]
    else:
        assert released == [("streams", 10), ("events", 15), ("streams", 20)]
        assert worker.merger.finished


def test_a_full_queue_of_records_at_the_bound_fetches_on_instead_of_waiting_for_ever(monkeypatch):
    # A batch retried by the producer landed after later ones: its records take their
    # predecessor's timestamp (20), and a fetch's worth of them sit at the bound.
    # More of them than a whole batch (100 here), so the queue stays full once events has ended.
    worker = Worker(monkeypatch, {"streams": [[20] + [5] * 149, [30, EOF]], "events": [[40, EOF]]}, tail=False)
    released = worker.release() + worker.release() + worker.release()
    assert released == [("streams", 20)] + [("streams", 5)] * 149 + [("streams", 30), ("events", 40)]
    assert worker.merger.finished


def test_a_reader_learns_its_partitions_leader_before_it_is_assigned(monkeypatch):
    """Assigned with the leader unknown, one partition's first fetch came after 1.0 s, not 0.1 s."""
    monkeypatch.setattr(kafka_source, "Consumer", ScriptedConsumer)
    reader = PartitionReader("tickets-00000", {"topic": "tickets", "script": []}, "tickets", 0, 0)
    assert reader.consumer.calls == ["metadata of tickets", "assign tickets from 0"]


def test_places_go_on_after_a_resume_from_where_the_snapshot_left_them(monkeypatch):
    """A quiet partition's late record is placed after what was released before it, also across a crash.

    Restarted at 0, a resumed run placed such a record before records placed ahead of it before the
    snapshot, and a lookup as of its place read an older state.
    """
    from utopia.io.kafka_source import MergedPartition

    def places(worker: Worker, after_s: float) -> list[int]:
        worker.now += after_s
        return [batch.position for batch in worker.merger.release()]

    running = Worker(monkeypatch, {"streams": [[10, 20]], "emails": [[EOF], NOTHING, [5, EOF]]})
    partitions = [MergedPartition(running.merger, part) for part in list(running.merger.parts.values())]
    assert places(running, 0) == []  # emails may still get a record before 10 ms
    assert places(running, MAX_IDLE_S) == [10 << 20]  # streams' 10, placed at its timestamp (shifted)
    assert places(running, 0) == []
    assert places(running, MAX_IDLE_S) == [(10 << 20) + 1]  # the late email of 5 ms, placed after it
    offset, position = partitions[0].snapshot()  # the epoch ends; then the run dies
    assert (offset, position) == (1, (10 << 20) + 2)

    resumed = Worker(monkeypatch, {"streams": [[20]], "emails": [[6, EOF]]})
    for part in list(resumed.merger.parts.values()):
        MergedPartition(resumed.merger, part, position)
    assert places(resumed, 0) == []
    assert places(resumed, MAX_IDLE_S) == [(10 << 20) + 2]  # not at 6 << 20, before the records placed earlier


def test_a_tailing_worker_that_has_read_all_there_is_says_so_once_a_second(monkeypatch):
    from utopia.io.kafka_source import MergedPartition

    quiet_then_30 = [[10, 20, EOF], NOTHING, NOTHING, NOTHING, NOTHING, [30, EOF]]
    worker = Worker(monkeypatch, {"streams": quiet_then_30, "artists": [[5, EOF]]})
    lead, other = [MergedPartition(worker.merger, part) for part in list(worker.merger.parts.values())]
    assert lead.next_batch() == []  # the partitions at their end may still get earlier records for a while
    worker.now += MAX_IDLE_S
    [batch] = lead.next_batch()
    assert [m.timestamp()[1] for m in batch.messages] == [5, 10, 20]
    [said] = lead.next_batch()  # all fetched to the end and released: an empty batch says so
    assert (len(said), said.lane, said.position) == (0, batch.lane, batch.position + 3)
    decoded = Decoder("most_streamed_artists", Topics(), {Stream: []}).decode(said)
    assert decoded.caught_up and decoded.records == [] and decoded.dead == []
    assert other.next_batch() == []  # only the lead speaks for the worker
    worker.now += 0.5
    assert lead.next_batch() == []  # once a second
    worker.now += 0.5
    assert [len(b) for b in lead.next_batch()] == [0]
    worker.now += 1.0
    assert lead.next_batch() == []  # a record (30) came: held for the idle time, and not caught up meanwhile
    worker.now += MAX_IDLE_S
    assert [len(b) for b in lead.next_batch()] == [1]


def test_a_worker_that_reads_to_the_end_and_stops_does_not_say_it_is_caught_up(monkeypatch):
    from utopia.io.kafka_source import MergedPartition

    worker = Worker(monkeypatch, {"streams": [[10, EOF]]}, tail=False)
    [lead] = [MergedPartition(worker.merger, part) for part in list(worker.merger.parts.values())]
    assert [len(b) for b in lead.next_batch()] == [1]
    with pytest.raises(StopIteration):
        lead.next_batch()


class Epochs:
    """Bytewax's side of one worker's partitions: each has epochs of its own, ended in one activation or another.

    Each activation calls every partition's `next_batch` in `order`, then ends the epoch of those
    named (`snapshot`); a partition whose input ends is snapshotted at once and dropped.
    """

    def __init__(self, worker: Worker, order: list[str]):
        from utopia.io.kafka_source import MergedPartition

        self.worker, self.order = worker, order
        self.parts = {name: MergedPartition(worker.merger, part) for name, part in worker.merger.parts.items()}
        self.lead = worker.merger.lead
        self.epoch = dict.fromkeys(self.parts, 1)
        self.released: list[tuple[str, int, int]] = []  # (partition, offset, the lead's epoch then)
        self.snapshots: dict[tuple[str, int], int] = {}  # (partition, its epoch) -> the offset it resumes at

    def activation(self, ending: str) -> None:
        self.worker.now += MAX_IDLE_S
        for name in list(self.order):
            try:
                batches = self.parts[name].next_batch()
            except StopIteration:
                self.end_epoch(name)
                self.order.remove(name)
                continue
            lead_epoch = self.epoch[self.lead]
            self.released += [(f"{m.topic()}-00000", m.offset(), lead_epoch) for b in batches for m in b.messages]
            if name in ending.split():
                self.end_epoch(name)

    def end_epoch(self, name: str) -> None:
        self.snapshots[name, self.epoch[name]] = self.parts[name].snapshot()[0]
        self.epoch[name] += 1

    def read_again_or_lost(self) -> dict[tuple[str, int], int]:
        """For each snapshot, how many records a run resumed from it reads twice (> 0) or never (< 0)."""
        done = {
            key: len([1 for part, _, e in self.released if part == key[0] and e <= key[1]]) for key in self.snapshots
        }
        return {key: done[key] - offset for key, offset in self.snapshots.items() if offset != done[key]}


FETCHES = {"events": [[10], [30], [50], [70, EOF]], "streams": [[20], [40], [60, EOF]]}
"""The lead (events) and another partition, each fetched over several activations."""


@pytest.mark.parametrize(
    ("order", "endings"),
    [
        (["events", "streams"], ["", "events streams"] * 5),
        (["streams", "events"], ["", "events streams"] * 5),  # the lead ends each epoch after the other
        (["events", "streams"], ["", "events", "streams"] * 4),  # the other ends each epoch an activation later
        (["events", "streams"], ["", "streams", "events"] * 4),  # ... an activation earlier
    ],
)
@pytest.mark.parametrize("tail", [True, False])
def test_every_snapshot_resumes_after_exactly_what_the_lead_released_in_the_epochs_it_ends(
    monkeypatch, order, endings, tail
):
    """Whichever partition Bytewax ends an epoch first, a run resumed from it reads each record once.

    A resumed run built its partitions in the order its store gave them, so the lead was not always
    the first to end an epoch: the other partition resumed from the epoch before, and a crash test
    saw its streams counted twice.
    """
    epochs = Epochs(Worker(monkeypatch, FETCHES, tail=tail), [f"{topic}-00000" for topic in order])
    for ending in endings:
        epochs.activation(" ".join(f"{topic}-00000" for topic in ending.split()))
    assert len(epochs.released) == 7 and len(epochs.snapshots) >= 4, (epochs.released, epochs.snapshots)
    assert epochs.read_again_or_lost() == {}


def test_a_partition_read_to_its_end_holds_nothing_back_until_the_epochs_end(monkeypatch):
    """Not tailing, a partition read to its end stops before the lead: the lead goes on releasing meanwhile.

    Held until the lead's epoch ended, every dataflow reading several topics waited up to an epoch
    (10 s without recovery) at the end of a short topic, and at start-up on empty topics.
    """
    worker = Worker(monkeypatch, {"events": [[10], [30], [50, EOF]], "streams": [[20, EOF]]}, tail=False)
    epochs = Epochs(worker, ["events-00000", "streams-00000"])
    for _ in range(4):
        epochs.activation("")  # no epoch ends by time
    assert [offset for _, offset, _ in epochs.released] == [0, 0, 1, 2]
    assert epochs.order == [] and epochs.read_again_or_lost() == {}


def test_a_read_kafka_refuses_is_told_with_its_topic_before_it_is_raised(monkeypatch):
    """kafka_io ends the run there in one line naming the topic and the ACL (tests/test_kafka_secured.py)."""
    monkeypatch.setattr(kafka_source, "Consumer", ScriptedConsumer)
    told: list[tuple[str, int]] = []
    script = {"topic": "streams", "script": [[10], [REFUSED]]}
    reader = PartitionReader("streams-00000", script, "streams", 0, 0, refused=lambda t, e: told.append((t, e.code())))
    reader.fetch(10, tail=True, now=0.0)
    assert told == [] and len(reader.pending) == 1
    with pytest.raises(KafkaException):
        reader.fetch(10, tail=True, now=0.0)
    assert told == [("streams", KafkaError.TOPIC_AUTHORIZATION_FAILED)]


def test_in_global_order_one_worker_releases_every_partition_and_snapshots_every_offset(monkeypatch):
    # UTOPIA_ORDER=global: Bytewax's one input partition holds every topic partition (kafka_source.WholeInput).
    monkeypatch.setattr(kafka_source, "Consumer", ScriptedConsumer)
    scripts = {"streams": [[10, 20, 30, 40], [EOF]], "events": [[15], [25, 35, EOF]], "tickets": [[EOF]]}
    parts = [
        PartitionReader(f"{topic}-00000", {"topic": topic, "script": s}, topic, 0, 0) for topic, s in scripts.items()
    ]
    whole = kafka_source.WholeInput(parts, batch_size=100, tail=False, max_idle_s=MAX_IDLE_S)
    released, snapshots = [], []
    with pytest.raises(StopIteration):
        while True:
            released += [(m.topic(), m.timestamp()[1]) for batch in whole.next_batch() for m in batch.messages]
            snapshots.append(whole.snapshot())
    assert released == [
        ("streams", 10),
        ("events", 15),
        ("streams", 20),
        ("events", 25),
        ("streams", 30),
        ("events", 35),
        ("streams", 40),
    ]
    offsets, place = snapshots[-1]
    assert offsets == {"streams-00000": 4, "events-00000": 3, "tickets-00000": 0}
    assert place == whole.merger.position > 0
