"""The floor `make bench` sets every dataflow beside: read and decode the streams topic, and nothing else.

It reads as a dataflow does (the Kafka source merging its partitions by timestamp, Bytewax, the
decoder and its dead letters) and keeps no state and writes no output: what is left of a
dataflow's time once this is taken away is its rules, its exchange and its outputs.
"""

import bytewax.operators as op
from bytewax.dataflow import Dataflow

from utopia.io.kafka_io import kafka_entry_point
from utopia.models import Stream
from utopia.steps import FlowIO, read


def build(io: FlowIO) -> Dataflow:
    flow = Dataflow("read_only")
    streams = read("streams", flow, io, {Stream: ["customerid"]})
    op.filter("nothing_kept", streams, lambda batch: False)
    return flow


flow = kafka_entry_point(build)
