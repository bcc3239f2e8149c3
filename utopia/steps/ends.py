"""Where a dataflow begins and ends: read and decode its input topics, write its outputs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta, tzinfo
from typing import Protocol, cast

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream, operator
from bytewax.inputs import Source
from bytewax.outputs import Sink

from utopia.codec import Batch, Decoder, KafkaBatch, Reads, RecordBatch
from utopia.config import Topics
from utopia.io import metrics, stopping
from utopia.steps.items import Out

OutputSink = Sink[Out] | Sink[tuple[str, list[Out]]]
"""Where output records go: one item per record, or whole batches keyed by the partition that writes them
(the exactly-once sink, utopia.io.transactions; `sink_items` says which)."""


class FlowIO(Protocol):
    """Where a dataflow's named sources and sinks come from: Kafka, files, or tests."""

    topics: Topics
    changelog: timedelta
    """How long a changelog update may wait to be superseded by a newer one for the same key."""
    zone: tzinfo
    """Where event dates without a zone were written."""

    def source(self, dataflow: str, topics: list[str]) -> Source[RecordBatch] | Source[KafkaBatch]:
        """A source of batches of raw records from these (full) input topic names."""
        ...

    def sink(self, dataflow: str, output: str) -> OutputSink:
        """A sink for the output called `output` (without prefix and suffix)."""
        ...


@operator
def read(step_id: str, flow: Dataflow, io: FlowIO, reads: Reads, caught_up: bool = False) -> Stream[Batch]:
    """Read and decode the input topics of `reads` (record type -> required foreign keys).

    Bad records go to the dead-letter topic; the stream carries batches of good ones in input order,
    and with `caught_up` also the empty batches that say a lane has read all there is for now
    (`Batch.caught_up`), for a dataflow whose outputs would otherwise wait for the next record.
    """
    decoder = Decoder(flow.flow_id, io.topics, reads, io.zone)
    # Bytewax's `Source[X]` is invariant, though a source only produces X: either source is one of raw batches.
    source = cast(Source[RecordBatch | KafkaBatch], io.source(flow.flow_id, decoder.topics))
    raw = op.input("consume", flow, source)

    read_count, dead_count = metrics.RECORDS_READ.labels(flow.flow_id), metrics.DEAD_LETTERS.labels(flow.flow_id)

    def decode(batch: RecordBatch | KafkaBatch) -> Batch:
        decoded = decoder.decode(batch)
        stopping.count(len(batch), len(decoded.dead))
        read_count.inc(len(batch))
        if decoded.dead:
            dead_count.inc(len(decoded.dead))
        return decoded

    decoded = op.map("decode", raw, decode)
    sink = io.sink(flow.flow_id, "dead-letters")
    items_of = sink_items(sink)
    op.output("dead_letters", op.flat_map("bad_records", decoded, lambda batch: items_of(batch.dead)), sink)
    return op.filter("good_records", decoded, _has_records_or_is_caught_up if caught_up else _has_records)


def _has_records(batch: Batch) -> bool:
    return bool(batch.records)


def _has_records_or_is_caught_up(batch: Batch) -> bool:
    return bool(batch.records) or batch.caught_up


@operator
def write(step_id: str, up: Stream[list[Out]], io: FlowIO, output: str) -> None:
    """Write batches of output records to the output called `output`."""
    written = metrics.RECORDS_WRITTEN.labels(up.flow().flow_id, output)
    sink = io.sink(up.flow().flow_id, output)
    items_of = sink_items(sink)

    def each(batch: list[Out]) -> list:
        written.inc(len(batch))
        return items_of(batch)

    op.output("produce", op.flat_map("each", up, each), sink)


def sink_items(sink: Sink) -> Callable[[list], list]:
    """How a sink takes a batch of output records: one item per record, or the whole batch as one item.

    The exactly-once sink (utopia.io.transactions) takes whole batches, keyed by the worker that made them.
    """
    return getattr(sink, "items_of", _each)


def _each(batch: list) -> list:
    return batch
