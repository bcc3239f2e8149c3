"""Kafka mode: the dataflows' sources and sinks on a real broker (local, your own, or Confluent Cloud).

Like Bytewax's KafkaSource, every topic partition is an input partition read with `assign()` and
resumed from recovery snapshots, not from committed offsets. Unlike it, a worker releases the
records of all its partitions in timestamp order (utopia.io.kafka_source), a release is one batch (a
list) so the dataflow pays Bytewax's per-item cost per batch, and the group and client ids start
with the output prefix, as shared clusters require.
"""

from __future__ import annotations

import logging
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

from bytewax.dataflow import Dataflow
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.outputs import DynamicSink, StatefulSinkPartition, StatelessSinkPartition
from confluent_kafka import OFFSET_END, KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient, ConfigResource

from utopia.codec import KafkaBatch, encode, fit, too_large
from utopia.config import ConfigError, Settings
from utopia.io import metrics
from utopia.io.faults import BrokerWatch, broker_watch, client_log, configure_logging, end_run, peer_lost_hook
from utopia.io.kafka_source import CONNECT_TIMEOUT_S, MergedPartition, PartitionReader, WholeInput, merger_for
from utopia.io.permissions import check_access, read_refused, write_refused
from utopia.io.recovery_store import RecoveryStore, input_parts, resume_line
from utopia.io.retention import DeletedRecords
from utopia.io.runtime import (
    RunFlags,
    favour_throughput,
    limit_malloc_arenas,
    plan_workers,
    relax_garbage_collector,
    run_flags,
    set_up_worker_thread,
    workers_across_processes,
)
from utopia.io.stopping import stop_on_signals
from utopia.io.transactions import TransactionalSink, check_permissions
from utopia.io.worker_sink import PerWorkerSink
from utopia.models import DeadLetter, Output
from utopia.steps import FlowIO, Out

FETCH_CONFIG = {
    # librdkafka stops fetching a partition once 100,000 of its records wait in the queue and looks
    # again only after fetch.queue.backoff.ms, 1 s by default: that, not the fetch size, capped a
    # Python consumer near 170k records/s here. Bounded by 4 MB queued instead and retried after
    # 10 ms, the default 1 MB fetches drain the bench's streams topic at about 1M records/s (the
    # raw limit in `make bench`), and a partition's first records arrive after 0.04 s, not 0.17 s
    # as with 10 MB fetches.
    "queued.min.messages": 1_000_000,
    "queued.max.messages.kbytes": 4 * 1024,
    "fetch.queue.backoff.ms": 10,
    # The broker holds an empty fetch this long: 500 ms by default, paid at start and at the end of a partition.
    "fetch.wait.max.ms": 100,
}
CLIENT_CONFIG = {
    # librdkafka waits half of this before its first connection to a broker learned from metadata:
    # 50 ms by default on every client's first request. Failed connections still back off to 10 s.
    "reconnect.backoff.ms": 10,
}
PRODUCER_CONFIG = {
    "linger.ms": 5,
    # Retried batches keep their order: a changelog's last record must be its last value.
    "enable.idempotence": True,
}
"""How the sinks' producers send (at least once); `make bench` measures a plain producer with the same."""


log = logging.getLogger("utopia")
quiet_log = logging.getLogger("utopia.kafka.admin")
quiet_log.addHandler(logging.NullHandler())
quiet_log.propagate = False
"""The admin client's librdkafka log: silenced, since failing to connect becomes our one-line error (and the
dashboard's, whose faults show on the dashboard)."""


EVERY_PARTITION = "every-partition"
"""The one Bytewax partition of the input with `UTOPIA_ORDER=global`: every topic partition, read by one worker."""

SourceState = tuple[int, int] | int | tuple[dict[str, int], int]
"""A source partition's snapshot: a topic partition's offset and its lane's place (an offset alone, in a store
written before places were kept), or with `UTOPIA_ORDER=global` every topic partition's offset and the place."""


class KafkaTopicsSource(FixedPartitionedSource[KafkaBatch, SourceState]):
    """All partitions of the input topics, each worker's merged in timestamp order (utopia.io.kafka_source).

    With `UTOPIA_ORDER=global`, one partition of Bytewax's holds them all (`WholeInput`).
    """

    def __init__(self, settings: Settings, dataflow: str, topics: list[str]):
        self.settings, self.dataflow, self.topics = settings, dataflow, topics
        self.deleted = DeletedRecords(lambda topic: topic_configs(settings, [topic]).get(topic, {}))

    def list_parts(self) -> list[str]:
        return [EVERY_PARTITION] if self.settings.order == "global" else self._topic_partitions()

    def _topic_partitions(self) -> list[str]:
        # Bytewax deals the parts out to the workers in turn, in the order of their names: named
        # topic first, a topic's partitions alternate between workers. Named partition first,
        # all of one topic could land on one worker (the 3 streams partitions of 4 topics did).
        metadata = admin(self.settings).list_topics(timeout=CONNECT_TIMEOUT_S)
        return [f"{topic}-{p:05d}" for topic in self.topics for p in sorted(metadata.topics[topic].partitions)]

    def build_part(
        self, step_id: str, for_part: str, resume_state: SourceState | None
    ) -> StatefulSourcePartition[KafkaBatch, SourceState]:
        # "earliest" is offset 0, which the broker answers as out of range once retention deleted
        # it: then the reader moves on to the earliest record and says how many went (it learns of
        # it from auto.offset.reset=error). Unlike the logical beginning, offset 0 needs no offset
        # lookup before the first fetch.
        start = 0 if self.settings.start_offset == "earliest" else OFFSET_END
        watch = broker_watch(self.settings.bootstrap_servers, MetadataProbe(self.settings))
        config = self._consumer_config(watch)
        settings = self.settings
        if for_part == EVERY_PARTITION:
            offsets, position = resume_state if isinstance(resume_state, tuple) else ({}, 0)
            assert isinstance(offsets, dict), "a store of another UTOPIA_ORDER is refused before the run starts"
            parts = [self._reader(name, config, watch, offsets.get(name, start)) for name in self._topic_partitions()]
            return WholeInput(parts, settings.batch_size, settings.tail, settings.max_idle_ms / 1000, position)
        # A store written before places were kept holds the offset alone.
        offset, position = (
            (start, 0)
            if resume_state is None
            else ((resume_state, 0) if isinstance(resume_state, int) else resume_state)
        )
        assert isinstance(offset, int), "a store of another UTOPIA_ORDER is refused before the run starts"
        merger = merger_for((id(self), step_id), settings.batch_size, settings.tail, settings.max_idle_ms / 1000)
        return MergedPartition(merger, self._reader(for_part, config, watch, offset), position)

    def _consumer_config(self, watch: BrokerWatch) -> dict:
        """The librdkafka settings of a partition's consumer, its errors told to `watch`."""
        return (
            self.settings.kafka_config()
            | CLIENT_CONFIG
            | FETCH_CONFIG
            | {
                "group.id": self.settings.topics.client_id(self.dataflow),
                "client.id": self.settings.topics.client_id(self.dataflow),
                "enable.auto.commit": "false",
                "enable.partition.eof": "true",
                "auto.offset.reset": "error",
                "logger": client_log,
                "error_cb": watch.error,
            }
        )

    def _reader(self, name: str, config: dict, watch: BrokerWatch, offset: int) -> PartitionReader:
        topic, partition = name.rsplit("-", 1)
        return PartitionReader(
            name, config, topic, int(partition), offset, watch.answered, self.deleted, self._read_refused
        )

    def _read_refused(self, topic: str, error: KafkaError) -> NoReturn:
        """Kafka no longer lets the principal read an input (an ACL removed while running): one line, rc 1."""
        end_run(self.dataflow, f"cannot read {topic} ({error.str()}){read_refused(self.settings, topic)}")


class MetadataProbe:
    """Whether the brokers answer a metadata request within a second: asked while they are lost (BrokerWatch).

    Its client is made at the first outage and kept for the next; it retries a failed connection
    every second at most (librdkafka backs off to 10 s by default), so a broker back is seen soon.
    """

    def __init__(self, settings: Settings):
        self.settings = settings
        self.client: AdminClient | None = None

    def __call__(self) -> bool:
        if self.client is None:
            config = (
                self.settings.kafka_config() | CLIENT_CONFIG | {"reconnect.backoff.max.ms": 1000, "logger": quiet_log}
            )
            self.client = AdminClient(config)  # type: ignore[arg-type]  # the stubs allow no logger or callback
        try:
            self.client.list_topics(timeout=1.0)
        except KafkaException:
            return False
        return True


class OutputEncoder:
    """Output records of one topic as the messages that carry them: encoded, and cut to fit where too large."""

    def __init__(self, settings: Settings, dataflow: str, topic: str, producer_max: int = 0):
        self.topic, self.dataflow = topic, dataflow
        self.dead_letters = settings.topics.output("dead-letters")
        self.limit = message_limit(settings, topic, producer_max or PRODUCER_MAX_BYTES)

    def messages(self, items: Iterable[Out]) -> list[tuple[str, bytes | None, bytes]]:
        topic, limit, messages = self.topic, self.limit, []
        for key, value in items:
            encoded = encode(value)
            kafka_key = None if key is None else key if type(key) is bytes else key.encode()
            if len(encoded) + (0 if kafka_key is None else len(kafka_key)) > limit:
                messages.append(self._too_large(key, value, encoded))
            else:
                messages.append((topic, kafka_key, encoded))
        return messages

    def _too_large(self, key: str | bytes | None, value: Output, encoded: bytes) -> tuple[str, bytes | None, bytes]:
        """A record too large for a message: a dead letter cut to fit instead, and the run goes on.

        One such record used to stop the dataflow on every restart (a poison pill).
        """
        kafka_key = None if key is None else (key if isinstance(key, bytes) else key.encode())[:MAX_KEY_BYTES]
        room = self.limit - (0 if kafka_key is None else len(kafka_key))
        if isinstance(value, DeadLetter):
            letter = fit(value, room)
        else:
            text_key = None if key is None else key if isinstance(key, str) else key.decode("utf-8", "replace")
            letter = too_large(self.dataflow, self.topic, text_key, encoded, self.limit, room)
        log.warning(
            "a record for %s is too large for a message (%d bytes): sent to %s cut to fit",
            self.topic,
            len(encoded),
            self.dead_letters,
        )
        metrics.DEAD_LETTERS.labels(self.dataflow).inc()
        return self.dead_letters, kafka_key, encode(letter)


class _ProducerPartition(StatelessSinkPartition[Out]):
    """One worker's producer for one output topic (at least once).

    It does not wait for each batch's delivery (linger plus a round trip, per batch): the producer
    delivers in the background, reports only failures, and a failure ends the run in one line at
    the next batch or at the end, never silently. Without a recovery store that is all: a restart
    reads the input again anyway. With one, `EpochDeliveredPart` waits for the deliveries once per
    epoch, before the store can have it.
    """

    def __init__(self, settings: Settings, dataflow: str, topic: str):
        client_id = settings.topics.client_id(dataflow)
        config: dict[str, Any] = (
            settings.kafka_config()
            | CLIENT_CONFIG
            | PRODUCER_CONFIG
            | {
                "client.id": client_id,
                "delivery.report.only.error": True,
                "on_delivery": self._failed,
                # Its log, but not its error callback: a producer polled only per batch hands over an
                # outage's errors late, after the consumers have seen the broker come back.
                "logger": client_log,
            }
        )
        self.producer = Producer(config)
        self.settings, self.dataflow, self.topic = settings, dataflow, topic
        self.encoder = OutputEncoder(settings, dataflow, topic, int(config.get("message.max.bytes", 0)))
        self.failures: list[tuple[KafkaError, Message]] = []

    def _failed(self, error: KafkaError, message: Message) -> None:
        self.failures.append((error, message))

    def write_batch(self, items: Iterable[Out]) -> None:
        produce = self.producer.produce
        with self._ending_the_run_if_it_fails():
            for topic, key, value in self.encoder.messages(items):
                try:
                    produce(topic, value, key)
                except BufferError:
                    send(self.producer, topic, key, value)
            self.producer.poll(0)
        self._stop_on_failures()

    def close(self) -> None:
        """Every record written so far is delivered, or the run ends in one line saying why not."""
        with self._ending_the_run_if_it_fails():
            self.producer.flush()
        self._stop_on_failures()

    @contextmanager
    def _ending_the_run_if_it_fails(self) -> Iterator[None]:
        try:
            yield
        except (KafkaException, SystemError) as raised:
            error = _kafka_error(raised)
            if error is None:
                raise
            self._producer_failed(error)

    def _stop_on_failures(self) -> None:
        """A delivery the broker refused ends the run, in one line naming the topic and why.

        A record not delivered is written again by the next run: from the input's start, or from the
        last snapshot with -r (which no batch after a failed one reaches).
        """
        if self.failures:
            error, message = self.failures[0]
            topic = message.topic()  # a delivery report always names it (the stubs allow None)
            end_run(
                self.dataflow,
                f"{len(self.failures)} record(s) not delivered to {topic}: {error.str()}"
                f"{write_refused(self.settings, error, topic)}",  # type: ignore[arg-type]
            )

    def _producer_failed(self, error: KafkaError) -> NoReturn:
        """The producer failed for good (Kafka refused its idempotent producer id, say): one line saying why."""
        if error.code() == KafkaError._FATAL:  # what `produce` says once the producer failed; `poll` says why
            try:
                self.producer.poll(0)
            except (KafkaException, SystemError) as raised:
                error = _kafka_error(raised) or error
        end_run(
            self.dataflow,
            f"cannot write to {self.topic} ({error.str()}){write_refused(self.settings, error, self.topic)}",
        )


def _kafka_error(raised: BaseException) -> KafkaError | None:
    """The error a producer's call raised, also from under the SystemError confluent-kafka buries it in.

    After a fatal error, confluent-kafka calls the delivery callback of each message it purged with
    that error already raised, and the callback fails (confluent-kafka-python issue #729).
    """
    for exception in (raised, raised.__cause__):
        if isinstance(exception, KafkaException):
            return exception.args[0]
    return None


PRODUCER_MAX_BYTES = 1_000_000
"""librdkafka's default `message.max.bytes`: the largest message a producer sends."""
MAX_KEY_BYTES = 1024
"""A dead letter for a record too large keeps at most this much of its key as its Kafka key."""
RECORD_OVERHEAD = 1024
"""Room left for a record's framing in a batch (headers, lengths, timestamps), by a wide margin."""


_limits: dict[tuple[str, str], int] = {}
_limits_lock = threading.Lock()


def message_limit(settings: Settings, topic: str, producer_max: int) -> int:
    """The most bytes of key and value one message to `topic` may have (asked once per process and topic).

    The smaller of the producer's limit and the topic's `max.message.bytes`, which the broker
    enforces (1 MB by default; Confluent Cloud allows up to 8 MB). Without the right to read the
    topic's configuration, or without an answer in time, the producer's limit alone.
    """
    with _limits_lock:
        known = _limits.get((settings.bootstrap_servers, topic))
        if known is None:
            known = _limits[settings.bootstrap_servers, topic] = _topic_max(settings, topic, producer_max)
    return min(producer_max, known) - RECORD_OVERHEAD


def _topic_max(settings: Settings, topic: str, default: int) -> int:
    value = topic_configs(settings, [topic]).get(topic, {}).get("max.message.bytes")
    if not value:
        log.info("the message size limit of %s is not known: the producer's limit applies", topic)
        return default
    return int(value)


def topic_configs(settings: Settings, topics: list[str]) -> dict[str, dict[str, str]]:
    """The configuration the broker applies to each of these topics (setting -> value), where it can be read.

    Reading it takes the DescribeConfigs right, which shared clusters need not grant: a topic whose
    configuration cannot be read in time is left out, and why is logged.
    """
    client = admin(settings)  # must outlive its futures
    resources = [ConfigResource(ConfigResource.Type.TOPIC, topic) for topic in dict.fromkeys(topics)]
    configs: dict[str, dict[str, str]] = {}
    try:
        futures = client.describe_configs(resources, request_timeout=CONNECT_TIMEOUT_S)
        for resource, future in futures.items():
            try:
                entries = future.result(timeout=CONNECT_TIMEOUT_S)
            except Exception as error:  # noqa: BLE001 -- a denied or unanswered topic is left out
                log.info("the configuration of topic %s cannot be read (%s)", resource.name, error)
                continue
            configs[resource.name] = {name: entry.value for name, entry in entries.items() if entry.value is not None}
    except KafkaException as error:
        log.info("the configuration of topics %s cannot be read (%s)", ", ".join(topics), _reason(error))
    return configs


def send(producer: Producer, topic: str, key: str | bytes | None, value: bytes, timestamp: int = 0) -> None:
    """Produce one record, waiting for deliveries while the local queue is full.

    Bytewax's KafkaSink fails the dataflow on a full queue instead (bytewax issue #522).
    """
    encoded_key = None if key is None else key if isinstance(key, bytes) else key.encode()
    while True:
        try:
            producer.produce(topic, value, encoded_key, timestamp=timestamp)
            return
        except BufferError:
            producer.poll(0.1)


class KafkaTopicSink(DynamicSink[Out]):
    """One output topic without a recovery store: each worker produces its own outputs."""

    def __init__(self, settings: Settings, dataflow: str, topic: str):
        self.settings, self.dataflow, self.topic = settings, dataflow, topic

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _ProducerPartition:
        set_up_worker_thread()  # every worker builds every sink, on its own thread, before any record
        return _ProducerPartition(self.settings, self.dataflow, self.topic)


class EpochDeliveredSink(PerWorkerSink):
    """One output topic with a recovery store (at least once): an epoch's records are delivered before it is stored.

    Bytewax stores an epoch once every snapshot of it is written; this sink's partitions snapshot
    after the epoch's last batch, and their snapshot waits for the deliveries. So the input offsets
    a resume starts from never pass a record that Kafka does not have. Flushing every batch of a
    `DynamicSink` instead cost up to a fifth of a run's CPU, and the store could still get ahead of
    the last batches (utopia.io.worker_sink). The partitions keep no state: their snapshots are
    removed before a resume (`forget_delivery_snapshots`), so the store still resumes under any
    worker layout.
    """

    def __init__(self, settings: Settings, dataflow: str, topic: str, flags: RunFlags):
        super().__init__(flags)
        self.settings, self.dataflow, self.topic = settings, dataflow, topic

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> EpochDeliveredPart:
        return EpochDeliveredPart(_ProducerPartition(self.settings, self.dataflow, self.topic))


class EpochDeliveredPart(StatefulSinkPartition[list[Out], None]):
    """One worker's producer for one output topic, waiting for its deliveries at the end of each epoch."""

    def __init__(self, producer: _ProducerPartition):
        self.producer = producer

    def write_batch(self, batches: list[list[Out]]) -> None:
        self.producer.write_batch(item for batch in batches for item in batch)

    def snapshot(self) -> None:
        self.producer.close()

    def close(self) -> None:
        self.producer.close()


class KafkaIO:
    def __init__(self, settings: Settings, flags: RunFlags | None = None):
        self.settings, self.flags = settings, flags
        self.topics = settings.topics
        self.changelog = settings.changelog
        self.zone = settings.zone
        self.inputs: list[str] = []  # every topic a source was made for, to check they exist
        self.outputs: list[str] = []

    def source(self, dataflow: str, topics: list[str]) -> KafkaTopicsSource:
        self.inputs.extend(topics)
        return KafkaTopicsSource(self.settings, dataflow, topics)

    def sink(self, dataflow: str, output: str) -> KafkaTopicSink | EpochDeliveredSink | TransactionalSink:
        topic = self.topics.output(output)
        if topic not in self.outputs:  # several steps may write one topic (dead letters)
            self.outputs.append(topic)
        if self.flags is None or self.flags.recovery_directory is None:
            return KafkaTopicSink(self.settings, dataflow, topic)
        if self.settings.exactly_once:
            return TransactionalSink(self.settings, dataflow, topic, self.flags)
        return EpochDeliveredSink(self.settings, dataflow, topic, self.flags)


def admin(settings: Settings) -> AdminClient:
    config = settings.kafka_config() | CLIENT_CONFIG | {"logger": quiet_log}
    return AdminClient(config)  # type: ignore[arg-type]  # the stubs allow no logger or callback


def existing_topics(settings: Settings) -> set[str]:
    """The broker's topic names; a ConfigError saying what failed and which variable to check.

    librdkafka retries for ever and tells why only through its error callback: a wrong password,
    a TLS listener spoken to in plain text, or the reverse, all looked alike here ("cannot reach
    Kafka ... Broker transport failure", after 10 s). The callback's errors name the cause.
    """
    errors: list[KafkaError] = []
    try:
        config = settings.kafka_config() | CLIENT_CONFIG | {"logger": quiet_log, "error_cb": errors.append}
        client = AdminClient(config)  # type: ignore[arg-type]  # the stubs allow no logger or callback
    except KafkaException as error:
        raise ConfigError(
            f"a Kafka client setting is not accepted ({_reason(error)}): check the KAFKA_ variables, "
            "KAFKA_CONFIG_* included"
        ) from None
    deadline, probed = time.monotonic() + CONNECT_TIMEOUT_S, False
    while True:
        try:
            return set(client.list_topics(timeout=0.5).topics)
        except KafkaException as error:
            last = _reason(error)
        client.poll(0)  # serves the error callback
        cause = diagnose(settings, errors)
        if cause is None and not probed and not settings.security_protocol.endswith("SSL"):
            probed, cause = True, plaintext_on_tls(settings)
        if cause is not None:
            raise ConfigError(cause)
        if time.monotonic() > deadline:
            raise ConfigError(
                f"cannot reach Kafka at {settings.bootstrap_servers} within {CONNECT_TIMEOUT_S:.0f}s "
                f"({last}): check KAFKA_BOOTSTRAP_SERVERS, and that the broker is up"
            )


def diagnose(settings: Settings, errors: list[KafkaError]) -> str | None:
    """What the clients' errors say is wrong with the settings, as one line naming the variable; None if nothing."""
    servers, protocol = settings.bootstrap_servers, settings.security_protocol
    for error in errors:
        text = error.str()
        if "mechanism handshake failed" in text:  # the listener speaks no SASL, or not this mechanism
            return (
                f"Kafka at {servers} does not answer as KAFKA_SECURITY_PROTOCOL={protocol} with "
                f"KAFKA_SASL_MECHANISM={settings.sasl_mechanism} expects ({_short(text)}): check "
                "KAFKA_SECURITY_PROTOCOL and KAFKA_SASL_MECHANISM"
            )
        if error.code() == KafkaError._AUTHENTICATION or "Authentication failed" in text:
            return (
                f"Kafka at {servers} refused the credentials of KAFKA_SASL_USERNAME={settings.sasl_username!r} "
                f"({_short(text)}): check KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
            )
        if "SSL handshake failed" in text or "certificate verify failed" in text:
            return (
                f"TLS with Kafka at {servers} failed ({_short(text)}): check KAFKA_SECURITY_PROTOCOL={protocol} "
                "(does that listener use TLS?) and KAFKA_SSL_CA_LOCATION (is the broker's CA trusted?)"
            )
        if "security.protocol" in text or ("SASL" in text and protocol.startswith("SASL")):
            return (
                f"Kafka at {servers} does not answer as KAFKA_SECURITY_PROTOCOL={protocol} expects "
                f"({_short(text)}): check KAFKA_SECURITY_PROTOCOL"
            )
    return None


def plaintext_on_tls(settings: Settings) -> str | None:
    """With a plaintext protocol: whether the first bootstrap server answers a TLS handshake, as one line if so.

    A TLS listener spoken to in plain text only closes the connection, and librdkafka says no more
    than "Broker transport failure" (the broker logged hundreds of failed handshakes meanwhile).
    """
    host, _, port = settings.bootstrap_servers.split(",")[0].strip().rpartition(":")
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # only: does it speak TLS at all?
    try:
        with (
            socket.create_connection((host, int(port)), timeout=2) as raw,
            context.wrap_socket(raw, server_hostname=host),
        ):
            pass
    except (OSError, ValueError):
        return None
    return (
        f"Kafka at {settings.bootstrap_servers} speaks TLS, and KAFKA_SECURITY_PROTOCOL="
        f"{settings.security_protocol} does not: set KAFKA_SECURITY_PROTOCOL=SASL_SSL (or SSL)"
    )


def _reason(error: KafkaException) -> str:
    return error.args[0].str() if error.args and hasattr(error.args[0], "str") else str(error)


def _short(text: str) -> str:
    """librdkafka's message without the broker prefix it repeats (`localhost:9092/bootstrap: `)."""
    return text.split(": ", 1)[1] if text.count(": ") and "/" in text.split(": ", 1)[0] else text


def missing_outputs(settings: Settings, io: KafkaIO, existing: set[str]) -> None:
    """Output topics are checked at start: reported in one line, or created with UTOPIA_CREATE_TOPICS=true.

    The local broker creates a topic on first write; Confluent Cloud does not, and a run then
    failed after 31 s with a traceback.
    """
    missing = [topic for topic in io.outputs if topic not in existing]
    if not missing:
        return
    if settings.create_topics:
        from utopia.io.topics import create  # topics imports this module

        create(settings, names=missing, quiet=True)
        log.info("created the missing output topic(s) %s", ", ".join(missing))
        return
    raise ConfigError(
        f"output topic(s) {', '.join(missing)} do not exist on {settings.bootstrap_servers}: create "
        "them with `utopia topics create`, or set UTOPIA_CREATE_TOPICS=true to let the dataflow do it"
    )


def check_exactly_once(flags: RunFlags | None) -> None:
    """Exactly-once needs a recovery store, and resumes one only with the worker layout that wrote it.

    Each worker's transactions are named after its place among the workers (utopia.io.transactions):
    under another layout, the transactions a crash left to send again would have no partition.
    """
    if flags is None or flags.recovery_directory is None:
        raise ConfigError(
            "UTOPIA_GUARANTEE=exactly-once needs a recovery store: run with -r DIR -s SECONDS "
            "-b SECONDS (make <dataflow> RECOVERY=1), see docs/outputs.md#delivery"
        )
    directory = flags.recovery_directory
    check_recovery_directory(directory)
    store = RecoveryStore(directory)
    try:
        complete, execution = store.complete(), store.last_execution()
    finally:
        store.close()
    if not complete:
        raise ConfigError(
            f"the recovery directory {directory} does not hold every recovery partition: with "
            "UTOPIA_GUARANTEE=exactly-once every process must see the whole store (one directory "
            "they all share)"
        )
    if execution is not None and execution.worker_count != flags.workers:
        raise ConfigError(
            f"the recovery store {directory} was written by {execution.worker_count} worker(s) and this "
            f"run has {flags.workers}: with UTOPIA_GUARANTEE=exactly-once a store resumes only with the "
            "workers that wrote it (or start a new store)"
        )


def check_recovery_directory(directory: Path) -> None:
    """A recovery directory without partitions is one line saying how to make them (Bytewax gave a traceback,
    and with several processes each said another was lost)."""
    if not directory.is_dir() or not any(directory.glob("part-*.sqlite3")):
        raise ConfigError(
            f"the recovery directory {directory} has no recovery partitions: make them with "
            f"`mkdir -p {directory} && python -m bytewax.recovery {directory} 1`"
        )


def forget_unfinished_epochs(directory: Path) -> None:
    """Before Bytewax resumes: the snapshots a crashed run made of unfinished epochs go (utopia.io.recovery_store).

    Every process does it before any starts the dataflow: Bytewax connects them all first.
    """
    store = RecoveryStore(directory, writable=True)
    try:
        forgotten = store.forget_unfinished()
    finally:
        store.close()
    if forgotten:
        log.info("recovery: %d snapshot(s) of epochs a crashed run never finished are forgotten", forgotten)


def forget_delivery_snapshots(directory: Path, flow: Dataflow) -> None:
    """Before Bytewax resumes: the snapshots of the at-least-once sinks' partitions go.

    They hold nothing (`EpochDeliveredSink`), but they name a partition of each worker, and Bytewax
    panics on a stored partition that no worker of the resumed run lists: without them a store
    resumes under any worker layout.
    """
    sinks = [step.step_id for step in core_steps(flow, "output") if isinstance(step.sink, EpochDeliveredSink)]
    store = RecoveryStore(directory, writable=True)
    try:
        store.forget_steps(sinks)
    finally:
        store.close()


def check_store_order(directory: Path, flow: Dataflow, order: str) -> None:
    """A store written under the other `UTOPIA_ORDER` is refused in one line: its input is split otherwise.

    Bytewax would panic on its source partitions, which no worker of this run lists, and the keyed
    steps' states know the other run's lanes (utopia.io.kafka_source).
    """
    parts = input_parts(directory, input_steps(flow))
    written = "global" if EVERY_PARTITION in parts else "partition"
    if parts and written != order:
        raise ConfigError(
            f"the recovery store {directory} was written with UTOPIA_ORDER={written} and this run has "
            f"UTOPIA_ORDER={order}: resume with {written}, or start with a new recovery store"
        )


def input_steps(flow: Dataflow) -> list[str]:
    """The ids of the dataflow's input steps: where Bytewax keeps the sources' snapshots."""
    return sorted(step.step_id for step in core_steps(flow, "input"))


def core_steps(flow: Dataflow, operator: str) -> list[Any]:
    """The dataflow's steps of one of Bytewax's core operators (`input`, `output`), however deep inside others."""
    steps, found = list(flow.substeps), []
    while steps:
        step = steps.pop()
        if type(step).__module__ == "bytewax.operators" and type(step).__name__ == operator:
            found.append(step)
        steps.extend(getattr(step, "substeps", ()))
    return found


def kafka_entry_point(build: Callable[[FlowIO], Dataflow]) -> Callable[[], Dataflow]:
    """The `flow` that `python -m bytewax.run dataflows.<name>` calls: the dataflow on Kafka.

    Settings come from the environment and are checked before Bytewax starts, so a bad value,
    an unreachable broker or a missing topic ends the run with one line, not a traceback.
    """

    def flow() -> Dataflow:
        name = build.__module__.rsplit(".", 1)[-1]
        limit_malloc_arenas()
        configure_logging(name)
        sys.excepthook = peer_lost_hook(name, sys.argv)
        try:
            settings = Settings.from_env()
            flags = run_flags()
            if settings.exactly_once:
                check_exactly_once(flags)
            if flags is not None and flags.recovery_directory is not None:
                check_recovery_directory(flags.recovery_directory)
                forget_unfinished_epochs(flags.recovery_directory)
            io = KafkaIO(settings, flags)
            plan_workers(workers_across_processes())
            dataflow = build(io)
            if flags is not None and flags.recovery_directory is not None:
                forget_delivery_snapshots(flags.recovery_directory, dataflow)
                check_store_order(flags.recovery_directory, dataflow, settings.order)
            existing = existing_topics(settings)
            check_access(settings, settings.topics.client_id(name), io.inputs, io.outputs)
            missing = sorted(set(io.inputs) - existing)
            if missing:
                raise ConfigError(
                    f"input topic(s) {', '.join(missing)} do not exist on {settings.bootstrap_servers}: "
                    "create them with `utopia topics create` or fill them with `utopia generate --to kafka`"
                )
            if settings.exactly_once:
                refused = check_permissions(settings, name)
                if refused is not None:
                    raise ConfigError(refused)
            missing_outputs(settings, io, existing)
        except ConfigError as error:
            sys.exit(f"utopia {name}: {error}")
        if flags is not None and flags.recovery_directory is not None and flags.process_id == 0:
            log.info(resume_line(flags.recovery_directory, input_steps(dataflow)))
        stop_on_signals()
        relax_garbage_collector()
        favour_throughput()
        return dataflow

    flow.__doc__ = build.__doc__
    return flow
