"""The broker's retention on the real broker: a data set it would delete is not loaded, and lost records are told."""

import logging
import os
import subprocess
import sys
import time

import msgspec
import pytest
from confluent_kafka import Producer, TopicPartition
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

from tests.kafka_support import ROOT, Cluster, read_messages
from utopia.io.kafka_io import KafkaTopicsSource, admin, topic_configs
from utopia.models import Stream

pytestmark = pytest.mark.kafka

WEEK_MS = "604800000"  # Kafka's default retention.ms


def keep_a_week(cluster: Cluster, name: str) -> str:
    """The input topic `name`, set to keep records 7 days (as a topic not created by `utopia topics create`)."""
    topic = cluster.settings.topics.input(name)
    entry = ConfigEntry("retention.ms", WEEK_MS, incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[entry])
    client = admin(cluster.settings)  # must outlive its futures
    for future in client.incremental_alter_configs([resource]).values():
        future.result(timeout=30)
    deadline = time.monotonic() + 60  # the broker applies it a moment after the controller took it
    while topic_configs(cluster.settings, [topic]).get(topic, {}).get("retention.ms") != WEEK_MS:
        assert time.monotonic() < deadline, f"{topic} still does not keep records {WEEK_MS} ms"
        time.sleep(0.1)
    return topic


def streams_in_partition_0(cluster: Cluster, count: int, deleted: int) -> str:
    """`count` streams s0, s1, ... of customers c0 (even) and c1 (odd) in partition 0 of the streams topic, the first
    `deleted` of them deleted by the broker."""
    topic = keep_a_week(cluster, "streams")
    producer = Producer(cluster.settings.kafka_config())
    for i in range(count):
        producer.produce(topic, msgspec.json.encode(Stream(f"s{i}", f"c{i % 2}", "a1")), f"s{i}".encode(), partition=0)
    producer.flush()
    client = admin(cluster.settings)  # must outlive its futures
    for future in client.delete_records([TopicPartition(topic, 0, deleted)]).values():
        future.result(timeout=30)
    return topic


def test_input_topics_are_created_to_keep_their_records_whatever_their_age():
    cluster = Cluster()
    inputs = cluster.settings.topics.all_inputs()
    assert {topic_configs(cluster.settings, inputs)[topic]["retention.ms"] for topic in inputs} == {"-1"}


def test_a_data_set_the_broker_would_delete_for_its_age_is_refused_in_one_line_and_loaded_with_a_later_start():
    cluster = Cluster()
    topic = keep_a_week(cluster, "streams")
    command = [
        sys.executable,
        "-m",
        "utopia.cli",
        "generate",
        "--to",
        "kafka",
        "--customers",
        "3",
        "--artists",
        "2",
        "--events",
        "2",
        "--tickets",
        "5",
        "--streams",
        "7",
    ]
    refused = subprocess.run(
        command, env=os.environ | cluster.env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert refused.returncode == 2
    assert refused.stderr.startswith(
        f"utopia: {topic} keeps records 7 days (retention.ms={WEEK_MS}) and this data set starts 2026-11-01T00:00:00Z, "
    ), refused.stderr
    assert refused.stderr.count("\n") == 1 and "Start it later (--start yesterday)" in refused.stderr
    assert not any(read_messages(cluster.settings.kafka_config(), t) for t in cluster.settings.topics.all_inputs())

    loaded = subprocess.run(
        [*command, "--start", "yesterday"],
        env=os.environ | cluster.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert loaded.returncode == 0, loaded.stderr
    assert len(read_messages(cluster.settings.kafka_config(), topic)) == 7


def test_a_dataflow_whose_input_records_were_deleted_says_so_in_one_line_and_reads_the_rest():
    cluster = Cluster()
    topic = streams_in_partition_0(cluster, count=10, deleted=5)  # left: s5, s7, s9 of c1; s6, s8 of c0
    done = cluster.run("customer_stream_count")
    assert done.returncode == 0, done.stderr
    told = [line for line in done.stderr.splitlines() if "deleted" in line]
    assert len(told) == 1, done.stderr
    assert told[0].endswith(
        f"customer_stream_count WARNING {topic}: the broker deleted 5 record(s) of partition 0 "
        f"(offsets 0 to 4) before this dataflow read them (it keeps records 7 days, retention.ms="
        f"{WEEK_MS}; to keep loaded data, give it recent timestamps (utopia generate --start "
        "yesterday) or keep the topics' records longer (retention.ms=-1, as `utopia topics "
        "create` makes input topics))"
    ), told
    counts = dict(cluster.read("customer-stream-count"))
    assert {key: value["streams"] for key, value in counts.items()} == {"c0": 2, "c1": 3}


def test_a_resume_below_the_first_record_the_broker_keeps_is_told_and_goes_on_from_it(caplog):
    cluster = Cluster()
    topic = streams_in_partition_0(cluster, count=10, deleted=6)
    source = KafkaTopicsSource(cluster.settings, "resumed", [topic])
    part = source.build_part("input", f"{topic}-00000", (3, 0))  # a snapshot's offset, then 3 more were deleted
    offsets: list[int] = []
    try:
        with caplog.at_level(logging.WARNING, logger="utopia.retention"):
            deadline = time.monotonic() + 60
            while len(offsets) < 4 and time.monotonic() < deadline:
                offsets += [m.offset() for batch in part.next_batch() for m in batch.messages]
                time.sleep(0.05)
    finally:
        part.close()
    assert offsets == [6, 7, 8, 9]
    assert [r.getMessage() for r in caplog.records if "deleted" in r.getMessage()] == [
        f"{topic}: the broker deleted 3 record(s) of partition 0 (offsets 3 to 5) before this dataflow read them (it "
        f"keeps records 7 days, retention.ms={WEEK_MS}; to keep loaded data, give it recent timestamps (utopia "
        "generate --start yesterday) or keep the topics' records longer (retention.ms=-1, as `utopia topics create` "
        "makes input topics))"
    ]
