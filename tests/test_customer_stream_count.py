"""How many streams each customer has played."""

from hypothesis import given, settings

from dataflows import customer_stream_count
from tests import reference
from tests.conftest import plain
from tests.strategies import stream_log
from utopia.io.testing import TestingIO, kafka_records, run
from utopia.models import Stream


def test_counts_every_stream_of_each_customer():
    records = [Stream("s1", "c1", "a"), Stream("s2", "c2", "a"), Stream("s3", "c1", "b"), Stream("s4", "c1", None)]
    io = TestingIO(kafka_records(records), batch_size=1)
    run(customer_stream_count.build(io))
    assert {k: plain(v) for k, v in io.latest("customer-stream-count").items()} == {
        "c1": {"customerid": "c1", "streams": 3},
        "c2": {"customerid": "c2", "streams": 1},
    }
    assert io.outputs["dead-letters"] == []


def test_tombstones_are_skipped_and_bad_records_dead_lettered():
    records = [Stream("s1", "c1", "a"), ("streams", None), ("streams", b"oops"), Stream("s2", "c1", "a")]
    io = TestingIO(kafka_records(records))
    run(customer_stream_count.build(io))
    assert plain(io.latest("customer-stream-count")["c1"]) == {"customerid": "c1", "streams": 2}
    assert [plain(d) for d in io.values("dead-letters")] == [
        {
            "dataflow": "customer_stream_count",
            "topic": "data-demo-streams",
            "partition": 0,
            "offset": 2,
            "key": None,
            "value": "oops",
            "error": "not valid JSON: JSON is malformed: invalid character (byte 0)",
        }
    ]


@settings(max_examples=40)  # each example runs whole dataflows
@given(log=stream_log())
def test_matches_reference(log, workers):
    io = TestingIO(kafka_records(log), batch_size=5)
    run(customer_stream_count.build(io), workers)
    good = [r for r in log if isinstance(r, Stream)]
    assert {k: plain(v) for k, v in io.latest("customer-stream-count").items()} == reference.customer_stream_count(good)
