"""`utopia watch`: the outputs as a live dashboard, read from Kafka or from a file-mode output directory.

Where Kafka is read from: the outputs the board shows whole (board.WHOLE_HISTORY: changelogs, the
trending windows, the dead letters) from their first record, so a fresh watch shows the current
totals, rankings and dead-letter count at once; the others, of which it shows rates and the latest
alerts, from the last LOOKBACK records of each partition. `--from-beginning` reads every output
whole. That suits the demo's sizes; on a topic of millions of records the first frame waits for
them. No consumer group is joined and no offset committed: partitions are assigned.

Output topics this client may not read are named under the board, and `--once` then ends with rc 1:
ACLs hide a topic without DESCRIBE from the broker's list (it is asked for by name), and one without
READ fails its fetches (reported per partition).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import msgspec
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicCollection, TopicPartition
from rich.console import Console, RenderableType
from rich.live import Live

from utopia.config import ConfigError, Settings, Topics
from utopia.io.kafka_io import CLIENT_CONFIG, admin, existing_topics, quiet_log
from utopia.io.kafka_source import CONNECT_TIMEOUT_S
from utopia.io.permissions import check_group
from utopia.models import OUTPUT_RECORDS
from utopia.tools.board import WHOLE_HISTORY, Board
from utopia.tools.dashboard import render

LOOKBACK = 50
"""Records per partition read back from the end of an output the board shows only the latest of."""
REFRESH_S = 1.0
FAULT_SHOWN_S = 30.0
"""How long the Kafka client's latest error stays under the board."""
READ_BUDGET_S = 0.5
"""The most a refresh spends reading, so a long backlog still redraws the screen."""

_NO_LEADER_YET = (
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
)
_READ_TO_ITS_END = (KafkaError._PARTITION_EOF, KafkaError.TOPIC_AUTHORIZATION_FAILED)
"""A partition at its end, or one the ACLs keep this client from reading: as far as it can be read now."""
_DECODERS = {name: msgspec.json.Decoder(model) for name, model in OUTPUT_RECORDS.items()}


class _Line(msgspec.Struct):
    value: msgspec.Raw  # the key is not needed (utopia.tools.board.Board)


_line_decoder = msgspec.json.Decoder(_Line)


def _add(board: Board, output: str, value: bytes | None, written_at: float | None = None) -> None:
    """A record as it was written, decoded into its output's value; one that is not that value is counted."""
    try:
        board.add(output, _DECODERS[output].decode(value or b"null"), written_at)
    except (msgspec.DecodeError, msgspec.ValidationError):
        board.unreadable += 1


def output_names(topics: Topics) -> dict[str, str]:
    """Output topic name (with prefix and suffix) -> output name."""
    return {topics.output(name): name for name in OUTPUT_RECORDS}


class FileOutputs:
    """A file-mode output directory, tailed: `<topic>.jsonl` files in it or in its subdirectories (demo-out/<dataflow>).

    Lines are read up to the last complete one. A file that shrank was replaced by a new run and is
    read again from its start. A line does not say when it was written: the board counts them.
    """

    timed = False

    def __init__(self, directory: Path, topics: Topics):
        if not directory.is_dir():
            raise ConfigError(f"output directory {directory} does not exist")
        self.directory, self.names = directory, output_names(topics)
        self.read_to: dict[Path, int] = {}

    def describe(self) -> str:
        return f"utopia watch: {self.directory}"

    def read(self, board: Board, budget_s: float) -> bool:
        """Add the new lines of every output file; always caught up afterwards."""
        files = [*self.directory.glob("*.jsonl"), *self.directory.glob("*/*.jsonl")]
        for path in sorted(files):
            output = self.names.get(path.stem)
            if output is not None:
                self._tail(board, path, output)
        return True

    def _tail(self, board: Board, path: Path, output: str) -> None:
        with path.open("rb") as file:
            size = file.seek(0, 2)
            start = self.read_to.get(path, 0)
            if size < start:
                start = 0
            file.seek(start)
            data = file.read(size - start)
        complete = data[: data.rfind(b"\n") + 1]
        self.read_to[path] = start + len(complete)
        for line in complete.splitlines():
            if not line.strip():
                continue
            try:
                parsed = _line_decoder.decode(line)
            except (msgspec.DecodeError, msgspec.ValidationError):
                board.unreadable += 1
                continue
            _add(board, output, bytes(parsed.value))

    def notes(self) -> list[str]:
        return []

    def denials(self) -> list[str]:
        return []

    def close(self) -> None:
        """Nothing is held open between reads."""


class KafkaOutputs:
    """Every partition of every output topic on the broker, assigned (no group), from where the module doc says."""

    timed = True

    def __init__(self, settings: Settings, from_beginning: bool = False):
        names = output_names(settings.topics)
        listed = existing_topics(settings)  # one line for an unreachable or refusing broker
        present = sorted(set(names) & listed)
        self.denied = set(_hidden_by_acls(settings, sorted(set(names) - listed)))  # and those it may not read
        if not present and not self.denied:
            raise ConfigError(
                f"no output topic of prefix {settings.topics.output_prefix!r} exists on "
                f"{settings.bootstrap_servers}: create them with `utopia topics create` and start "
                "the dataflows"
            )
        check_group(settings, settings.topics.client_id("watch"))
        self.settings, self.names, self.present = settings, names, present
        self.fault: tuple[float, str] | None = None  # the latest error the client reported, and when
        self.consumer = Consumer(
            settings.kafka_config()
            | CLIENT_CONFIG
            | {
                "group.id": settings.topics.client_id("watch"),
                "client.id": settings.topics.client_id("watch"),
                "enable.auto.commit": "false",
                "enable.partition.eof": "true",
                "auto.offset.reset": "earliest",
                # Exactly-once dataflows' outputs show once committed, never those of a run that crashed.
                "isolation.level": "read_committed",
                "logger": quiet_log,  # lines written under the dashboard would tear it
                "error_cb": self._failed,
            }
        )
        metadata = self.consumer.list_topics(timeout=CONNECT_TIMEOUT_S).topics
        starts = []
        for topic in present:
            whole = from_beginning or names[topic] in WHOLE_HISTORY
            for partition in sorted(metadata[topic].partitions):
                starts.append(
                    TopicPartition(topic, partition, OFFSET_BEGINNING if whole else self._lookback(topic, partition))
                )
        self.consumer.assign(starts)
        self.behind = {(start.topic, start.partition) for start in starts}  # not yet read to their end once

    def describe(self) -> str:
        return (
            f"utopia watch: {len(self.present)} outputs {self.settings.topics.output('*')} on "
            f"{self.settings.bootstrap_servers}"
        )

    def _failed(self, error: KafkaError) -> None:
        self.fault = (time.monotonic(), error.str())

    def notes(self) -> list[str]:
        """The outputs it may not read, and the client's latest error while recent: why numbers are missing."""
        notes = self.denials()
        if self.fault is not None and time.monotonic() - self.fault[0] <= FAULT_SHOWN_S:
            notes.append(f"Kafka: {self.fault[1]}")
        return notes

    def denials(self) -> list[str]:
        """One line naming the output topics the ACLs keep from this client, and what it needs; none if none."""
        if not self.denied:
            return []
        topics = self.settings.topics
        named = (
            f"the output topics {topics.output('*')}"
            if len(self.denied) == len(self.names)
            else ", ".join(sorted(self.denied))
        )
        sasl = self.settings.security_protocol.startswith("SASL")
        who = f"KAFKA_SASL_USERNAME={self.settings.sasl_username!r}" if sasl else "this client"
        return [f"Kafka denies {who} reading {named}: the principal needs READ and DESCRIBE on them"]

    def _lookback(self, topic: str, partition: int) -> int:
        """LOOKBACK records before the end; a topic created a moment ago may have no leader yet: asked again."""
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        while True:
            try:
                low, high = self.consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=CONNECT_TIMEOUT_S
                )
                return max(low, high - LOOKBACK)
            except KafkaException as error:
                if error.args[0].code() not in _NO_LEADER_YET or time.monotonic() > deadline:
                    raise
            time.sleep(0.1)

    def read(self, board: Board, budget_s: float) -> bool:
        """Add what arrived, for at most `budget_s`; True once every partition has been read to its end."""
        deadline = time.monotonic() + budget_s
        while True:
            messages = self.consumer.consume(1000, timeout=max(0.0, min(0.1, deadline - time.monotonic())))
            for message in messages:
                error = message.error()
                if error is None:
                    _, stamp = message.timestamp()
                    topic: str = message.topic()  # type: ignore[assignment]  # a consumed message has its topic
                    _add(board, self.names[topic], message.value(), stamp / 1000)
                elif error.code() in _READ_TO_ITS_END:
                    self.behind.discard((message.topic(), message.partition()))
                    if error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
                        self.denied.add(message.topic())  # type: ignore[arg-type]  # a partition's error has one
            if not messages or time.monotonic() >= deadline:
                return not self.behind

    def close(self) -> None:
        self.consumer.close()


def _hidden_by_acls(settings: Settings, topics: list[str]) -> list[str]:
    """Those of `topics` (not in the broker's list) that Kafka refuses to describe: they may exist, unseen."""
    if not topics:
        return []
    client = admin(settings)  # must outlive its futures
    hidden = []
    for topic, future in client.describe_topics(TopicCollection(topics)).items():
        try:
            future.result(timeout=CONNECT_TIMEOUT_S)
        except KafkaException as error:
            if error.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
                hidden.append(topic)
    return hidden


Source = FileOutputs | KafkaOutputs


def watch(
    source: Source,
    console: Console,
    seconds: float | None = None,
    once: bool = False,
    notes: Callable[[], Sequence[str]] = tuple,
) -> bool:
    """Draw the board once a second until Ctrl-C, for `seconds`, or, with `once`, one frame of all there is now.

    Live, each frame fits the terminal's height; `once` prints the whole frame. `notes` gives lines
    to show under the board at every refresh (utopia.tools.live_demo: processes that stopped).
    False if some output could not be read (the frame says which).
    """
    board = Board(timed=source.timed)

    def frame(height: int | None) -> RenderableType:
        return render(board, time.time(), source.describe(), [*source.notes(), *notes()], height)

    try:
        if once:
            while not source.read(board, READ_BUDGET_S):
                pass
            console.print(frame(None))
            return not source.denials()
        end = None if seconds is None else time.monotonic() + seconds
        with Live(console=console, auto_refresh=False, transient=False) as live:
            while end is None or time.monotonic() < end:
                tick = time.monotonic()
                source.read(board, READ_BUDGET_S)
                live.update(frame(console.height), refresh=True)
                time.sleep(max(0.0, REFRESH_S - (time.monotonic() - tick)))
        return not source.denials()
    finally:
        source.close()
