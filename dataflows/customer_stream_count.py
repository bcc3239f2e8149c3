"""Sample: how many streams each customer has played.

streams -> count per customer -> customer-stream-count (changelog, key customerid)
"""

from bytewax.dataflow import Dataflow

from utopia.io.kafka_io import kafka_entry_point
from utopia.models import Stream
from utopia.rules.listening import StreamCount, just_counted
from utopia.steps import FlowIO, keyed_state, read, write
from utopia.steps.keys import BY_LISTENER


def build(io: FlowIO) -> Dataflow:
    flow = Dataflow("customer_stream_count")
    streams = read("streams", flow, io, {Stream: ["customerid"]})
    counts = keyed_state(
        "count_per_customer", streams, BY_LISTENER, StreamCount, value=just_counted, changelog=io.changelog
    )
    write("customer_stream_count", counts, io, "customer-stream-count")
    return flow


flow = kafka_entry_point(build)
