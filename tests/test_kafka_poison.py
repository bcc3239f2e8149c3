"""No record stops a dataflow: records too large for a message become dead letters cut to fit (real broker).

A 900 KB value that is not UTF-8 (its base64 dead letter would be 1.2 MB) and a stream whose
output would be 1.2 MB (a 600 KB customer id, in the key and the value) used to stop the
dataflow with a Rust panic, on every restart. Now each reaches the dead letters, cut to fit the
topic's 1 MB messages with the size and SHA-256 of what was cut, and the records after them count.
"""

import base64
import hashlib

import msgspec
import pytest
from confluent_kafka import Producer

from tests.kafka_support import Cluster
from utopia.io.kafka_io import send
from utopia.models import Stream

pytestmark = pytest.mark.kafka


def test_records_too_large_for_a_message_become_dead_letters_and_the_run_goes_on():
    cluster = Cluster()
    poison = b"\xff" + bytes(range(256)) * 3515  # 899,841 bytes, not UTF-8
    huge = "c" * 600_000
    producer = Producer(cluster.settings.kafka_config())
    streams = cluster.settings.topics.input("streams")
    send(producer, streams, b"\xfe\xffkey", poison)  # a key that is not UTF-8 either
    send(producer, streams, "s-huge", msgspec.json.encode(Stream("s-huge", huge, "a1")))
    producer.flush()
    cluster.produce("streams", [Stream(f"s{i}", f"c{i % 3}", "a1") for i in range(30)])

    done = cluster.run("customer_stream_count")

    assert done.returncode == 0, done.stderr
    counts = dict(cluster.read("customer-stream-count"))
    assert {key: value["streams"] for key, value in counts.items()} == {"c0": 10, "c1": 10, "c2": 10}
    letters = [value for _, value in cluster.read("dead-letters")]
    bad_value = next(letter for letter in letters if letter["topic"] == streams)
    assert bad_value["error"].startswith("not valid JSON")  # bytes, not text: no JSON starts with 0xFF
    assert (bad_value["encoding"], bad_value["key_encoding"]) == ("base64", "base64")
    assert bad_value["key"] == base64.b64encode(b"\xfe\xffkey").decode()
    encoded = base64.b64encode(poison)
    assert encoded.decode().startswith(bad_value["value"]) and 900_000 < len(bad_value["value"]) < 1_000_000
    assert (bad_value["value_bytes"], bad_value["value_sha256"]) == (len(encoded), hashlib.sha256(encoded).hexdigest())
    counts = cluster.settings.topics.output("customer-stream-count")
    too_large = next(letter for letter in letters if letter["topic"] == counts)
    assert too_large["error"] == (
        "output too large: 1,200,029 bytes with its key, more than the 998,976 a message may have"
    )
    assert (too_large["partition"], too_large["offset"], too_large["key"]) == (-1, -1, huge)
    assert len(letters) == 2
