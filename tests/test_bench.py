"""The bench's arithmetic: which run it reports, and the most that more processes can gain here."""

import argparse
import os
import pickle
import subprocess
import sys
import time
import uuid

import msgspec
import pytest

from utopia.config import Settings
from utopia.io import topics
from utopia.io.kafka_io import existing_topics
from utopia.models import INPUT_RECORDS, OUTPUT_RECORDS, DeadLetter, Event, Stream, Ticket
from utopia.tools import bench, client_limit, order_bench, recovery_bench
from utopia.tools.bench import RECOVERY_EVERY_10_S, Kind, Run, _cpu_seconds, local_broker, median_run
from utopia.tools.client_limit import OUTPUT_SAMPLES, Limit


def run(seconds: float, cpu: float = 0.0, startup: float = 0.0, startup_cpu: float = 0.0) -> Run:
    return Run("customer_stream_count", 1, 1_000_000, seconds, 100.0, cpu, startup, startup_cpu)


def test_the_median_run_is_one_of_the_runs_not_a_blend():
    runs = [run(3.0, cpu=3.3), run(2.0, cpu=2.9), run(9.0, cpu=9.9)]
    assert median_run(runs) is runs[0]


def test_rates_and_cores_busy():
    one = run(4.0, cpu=5.0, startup=0.5)
    assert one.rate == 250_000
    assert one.rate_after_startup == pytest.approx(1_000_000 / 3.5)
    assert one.cores == 1.25


def test_ceiling_keeps_the_start_up_and_spreads_the_records_cpu_over_every_core():
    # 4 s, 0.5 s of them start-up; the records took 5.5 - 0.5 = 5 CPU seconds: on 2 cores at best
    # 0.5 + 2.5 = 3 s, so no run on more processes can be more than 4/3 times faster.
    one = run(4.0, cpu=5.5, startup=0.5, startup_cpu=0.5)
    assert one.ceiling(2) == pytest.approx(4 / 3)
    assert one.ceiling(4) == pytest.approx(4 / 1.75)


def test_a_run_that_kept_one_core_busy_can_at_best_double_on_two():
    assert run(3.0, cpu=3.0).ceiling(2) == pytest.approx(2.0)


def test_cpu_seconds_are_what_a_process_burned_not_how_long_it_lived():
    spin_then_wait = "import time\nwhile time.process_time() < 0.6: pass\ninput()"
    busy = subprocess.Popen([sys.executable, "-c", spin_then_wait], stdin=subprocess.PIPE)
    try:
        give_up = time.monotonic() + 30
        while _cpu_seconds(busy.pid) < 0.55 and time.monotonic() < give_up:  # /proc counts in 10 ms ticks
            time.sleep(0.05)
        time.sleep(0.3)  # waiting for input burns nothing
        assert 0.55 <= _cpu_seconds(busy.pid) < 0.7
    finally:
        busy.communicate(b"\n")


def test_a_remote_broker_is_not_counted_as_the_local_one(tmp_path, monkeypatch):
    (tmp_path / "broker.pid").write_text(str(os.getpid()))
    monkeypatch.setenv("KAFKA_HOME_DIR", str(tmp_path))
    assert local_broker(Settings(bootstrap_servers="localhost:9092")) == os.getpid()
    assert local_broker(Settings(bootstrap_servers="pkc-123.europe-west1.gcp.confluent.cloud:9092")) is None
    (tmp_path / "broker.pid").write_text("999999999")  # no such process: the broker is not running
    assert local_broker(Settings(bootstrap_servers="localhost:9092")) is None


def test_kinds_of_run_take_turns_and_each_gets_its_median_run_and_start_up(monkeypatch):
    calls = []
    # per round: 1 worker on the data, on empty topics; 2 processes the same; 2 separate runs the same
    seconds = iter([5.0, 0.4, 3.0, 0.6, 9.0, 0.8, 4.0, 0.5, 2.0, 0.7, 8.0, 0.9, 6.0, 0.3, 2.5, 0.9, 7.0, 0.6])

    def fake_run(name, workers, records, settings, separate, delivery, order):
        calls.append((workers, records, separate))
        return Run(
            name,
            workers,
            records * (workers if separate else 1),
            next(seconds),
            100.0,
            cpu=float(len(calls)),
            separate=separate,
        )

    monkeypatch.setattr(bench, "run_dataflow", fake_run)
    monkeypatch.setattr(bench, "host_speed", lambda: 0.1)
    speeds: list[float] = []
    one, two, apart = bench.measure("top_customer_artists", bench.kinds_of([1, 2]), 1_000_000, None, None, 3, speeds)
    assert (
        calls
        == [
            (1, 1_000_000, False),
            (1, 0, False),
            (2, 1_000_000, False),
            (2, 0, False),
            (2, 1_000_000, True),
            (2, 0, True),
        ]
        * 3
    )
    assert speeds == [0.1, 0.1, 0.1]
    assert (one.workers, one.seconds, one.startup) == (1, 5.0, 0.4)
    assert (two.workers, two.seconds, two.startup) == (2, 2.5, 0.7)
    assert (apart.separate, apart.records, apart.seconds, apart.startup) == (True, 2_000_000, 8.0, 0.8)
    assert (one.cpu, one.startup_cpu, two.cpu, two.startup_cpu) == (1.0, 2.0, 15.0, 10.0)  # the medians' own
    # the cost per record: the median CPU of the runs (1, 7, 13: each call's number) less that of their start-ups
    assert (one.records_cpu, two.records_cpu, apart.records_cpu) == (7.0 - 8.0, 9.0 - 10.0, 11.0 - 12.0)


def test_the_cost_per_record_takes_start_up_off_and_compares_with_one_worker():
    runs = [
        Run("sold_out", 1, 1_000_000, 4.0, 100.0, cpu=4.5, startup_cpu=0.5),
        Run("sold_out", 2, 1_000_000, 3.0, 100.0, cpu=6.0, startup_cpu=1.0),
        Run("sold_out", 2, 2_000_000, 5.0, 100.0, cpu=11.0, startup_cpu=1.0, separate=True),
    ]
    assert [r.cpu_per_million for r in runs] == [4.0, 5.0, 5.0]
    assert bench.cost_table(runs)[-1] == "| sold_out | 4.00 | 5.00 | 1.25x | 5.00 | 1.25x |"


def test_the_instruction_count_child_runs_a_dataflow_on_its_input_and_says_how_many_records_it_read(tmp_path):
    from utopia.io.testing import kafka_records
    from utopia.models import Customer, Stream

    records = kafka_records(
        [
            Customer(id="c1"),
            Stream(id="s1", customerid="c1", artistid="a1"),
            Stream(id="s2", customerid="c1", artistid="a2"),
        ]
    )
    (tmp_path / "records.pickle").write_bytes(pickle.dumps(records))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "utopia.tools.instructions",
            "--child",
            "customer_stream_count",
            str(tmp_path / "records.pickle"),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[-1] == "input records: 2"  # the streams; customers are not its input


def test_the_crossing_count_keeps_every_bundle_and_counts_the_records_of_the_second_half(tmp_path):
    from utopia.io.testing import kafka_records
    from utopia.models import Event, Ticket
    from utopia.tools.instructions import crossing_bundles

    tickets = [Ticket(f"t{n}", "c1", "e1" if n % 2 else "e2") for n in range(2500)]
    records = kafka_records([Event(id="e1", capacity=10), Event(id="e2", capacity=5), *tickets])
    bundles = crossing_bundles("purchase_event_ticket", records)
    # Every record goes to its event's desk, in the bundle of the worker that has it: 3 batches of 1,000 or fewer.
    assert sum(len(pairs) for bundle in bundles for _, pairs in bundle) == 2502
    (tmp_path / "bundles.pickle").write_bytes(pickle.dumps(bundles))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "utopia.tools.instructions",
            "--child",
            "purchase_event_ticket",
            str(tmp_path / "bundles.pickle"),
            "--crossing",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    counted = sum(len(pairs) for bundle in bundles[len(bundles) // 2 :] for _, pairs in bundle)
    assert 0 < counted < 2502 and done.stderr.splitlines()[-1] == f"crossing records: {counted}"


def test_the_in_out_limit_adds_the_plain_clients_time_to_read_the_input_and_to_write_the_outputs():
    # The plain client reads 1M records/s and writes 500k/s: reading 1M takes it 1 s, writing 2M 4 s.
    # A run that took 10 s for both is half as fast as the plain client.
    consume, produce = Limit("read", 3_000_000, 3.0), Limit("write", 1_000_000, 2.0)
    written = Run("suggested_events_genre", 1, 1_000_000, 10.0, 100.0, outputs=2_000_000)
    assert written.vs_client_limit(consume, produce) == pytest.approx(0.5)
    # With no outputs, the time to read alone.
    assert Run("sold_out", 1, 1_000_000, 4.0, 100.0).vs_client_limit(consume, produce) == pytest.approx(0.25)


def test_the_report_gives_each_run_its_outputs_and_its_share_of_the_in_out_limit():
    consume, produce = Limit("raw consume", 1_000_000, 1.0), Limit("raw produce", 500_000, 1.0)
    one = Run("suggested_events_genre", 1, 1_000_000, 10.0, 300.0, cpu=12.0, startup=0.5, outputs=2_000_000)
    page = bench.report(consume, produce, [one], {}, bench.BENCH_SIZES, 3, 1, [0.1])
    assert "| raw produce | 1 | | 500,000 | 1.00 | | 500,000 | 1.00 | | | | | | | |" in page.splitlines()
    assert (
        "| suggested_events_genre | 1 | 1,000,000 | 2,000,000 | 10.00 | 0.50 | 100,000 | 0.50 |  | 105,263 |  | "
        "12.00 | 1.20 |  | 300 |"
    ) in page.splitlines()


def test_the_world_options_change_only_their_sizes_and_name_topics_of_their_own():
    parser = argparse.ArgumentParser()
    bench.bench_arguments(parser, repeat=3)
    args = parser.parse_args(["--customers", "400000", "--dataflows", "sold_out"])
    bench.check_bench_arguments(parser, args)
    sizes = bench.bench_sizes(args)
    assert (sizes.customers, sizes.streams, sizes.tickets) == (400_000, 1_000_000, 200_000)
    default = bench.input_settings(bench.BENCH_SIZES, 1, 3).topics.input_prefix
    assert default == "bench-100000c-2000a-2000e-200000t-1000000s-1-3p-data-demo-"
    assert bench.input_settings(sizes, 1, 3).topics.input_prefix != default
    with pytest.raises(SystemExit):
        bench.check_bench_arguments(parser, parser.parse_args(["--dataflows", "no_such_flow"]))


def test_a_section_replaces_its_former_self_and_leaves_the_rest_of_the_page(tmp_path):
    page = tmp_path / "benchmarks.md"
    page.write_text("# Benchmarks\n\nmain table\n")
    bench.write_section(page, "<!-- a: begin -->\nfirst\n<!-- a: end -->\n", "<!-- a: begin -->", "<!-- a: end -->")
    bench.write_section(page, "<!-- b: begin -->\nother\n<!-- b: end -->\n", "<!-- b: begin -->", "<!-- b: end -->")
    bench.write_section(page, "<!-- a: begin -->\nsecond\n<!-- a: end -->\n", "<!-- a: begin -->", "<!-- a: end -->")
    assert page.read_text() == (
        "# Benchmarks\n\nmain table\n\n<!-- a: begin -->\nsecond\n<!-- a: end -->\n\n"
        "<!-- b: begin -->\nother\n<!-- b: end -->\n"
    )


def test_recovery_rows_compare_the_cpu_per_record_and_give_what_recovery_added_and_its_store():
    plain = Run("top_customer_artists", 1, 1_000_000, 4.0, 300.0, cpu=4.5, records_cpu=4.0)
    recovering = Run("top_customer_artists", 1, 1_000_000, 5.0, 320.0, cpu=5.5, records_cpu=4.8, store_mb=103.25)
    assert recovery_bench.row(plain, recovering) == (
        "| top_customer_artists | 1,000,000 | 4.00 | 4.80 | 1.20x | 0.80 | 103.2 | 4.00 | 5.00 | 300 | 320 |"
    )
    assert recovery_bench.KINDS == [Kind(1), Kind(1, delivery=RECOVERY_EVERY_10_S)]


def test_each_world_size_has_a_recovery_section_of_its_own():
    bigger = bench.bench_sizes(
        argparse.Namespace(customers=400_000, artists=2_000, events=2_000, tickets=200_000, streams=1_000_000)
    )
    assert recovery_bench.markers(bench.BENCH_SIZES) != recovery_bench.markers(bigger)


def test_the_order_bench_alternates_the_two_orders_on_two_processes_and_passes_each_its_order(monkeypatch):
    calls = []

    def fake_run(name, workers, records, settings, separate, delivery, order):
        calls.append((workers, records, separate, order))
        return Run(name, workers, records, 1.0, 100.0, cpu=1.0, process_peaks_mb=(100.0, 80.0))

    monkeypatch.setattr(bench, "run_dataflow", fake_run)
    monkeypatch.setattr(bench, "host_speed", lambda: 0.1)
    bench.measure("sold_out", order_bench.KINDS, 1_000, None, None, 3, [])
    # per round: partition order on the data, on empty topics; global order the same
    assert (
        calls
        == [
            (2, 1_000, False, "partition"),
            (2, 0, False, "partition"),
            (2, 1_000, False, "global"),
            (2, 0, False, "global"),
        ]
        * 3
    )


def test_order_rows_compare_the_cpu_per_record_and_show_each_process_peak_memory():
    partition_run = Run("top_customer_artists", 2, 1_000_000, 4.0, 190.0, records_cpu=5.0, process_peaks_mb=(190, 150))
    global_run = Run("top_customer_artists", 2, 1_000_000, 5.5, 260.0, records_cpu=6.5, process_peaks_mb=(260.4, 99.6))
    assert order_bench.row(partition_run, global_run) == (
        "| top_customer_artists | 1,000,000 | 5.00 | 6.50 | 1.30x | 4.00 | 5.50 | 190 / 150 | 260 / 100 |"
    )


def test_the_raw_producer_writes_one_of_every_kind_of_output_record():
    assert set(OUTPUT_SAMPLES) == set(OUTPUT_RECORDS.values()) - {DeadLetter}
    for kind, (_, value) in OUTPUT_SAMPLES.items():
        assert msgspec.json.decode(msgspec.json.encode(value), type=kind) == value


@pytest.mark.kafka
def test_the_raw_producer_delivers_every_record_to_a_topic_it_deletes_after(monkeypatch):
    settings = Settings.from_env(os.environ | {"UTOPIA_OUTPUT_PREFIX": f"it-{uuid.uuid4().hex[:8]}-"})
    delivered = {}
    delete = client_limit.topics.delete

    def counted_then_deleted(settings, names):
        delivered.update(bench.topic_records(settings, names))
        delete(settings, names)

    monkeypatch.setattr(client_limit.topics, "delete", counted_then_deleted)
    limit = client_limit.raw_produce(settings, 2_500, 3)
    [(topic, records)] = delivered.items()
    assert topic.startswith(settings.topics.output_prefix) and records == 2_500
    assert (limit.records, limit.seconds > 0) == (2_500, True)
    assert topic not in existing_topics(settings)


@pytest.mark.kafka
def test_a_run_counts_what_it_wrote_and_the_size_of_its_recovery_store():
    from tests.kafka_support import Cluster

    cluster = Cluster()
    cluster.produce("tickets", [Ticket(f"t{i}", f"c{i}", "e1", 20.0) for i in range(5)])
    cluster.produce("events", [Event("e1", "a1", "v1", 3, "Mon Mar 01 20:00:00 UTC 2027")])
    run = bench.run_dataflow("purchase_event_ticket", 1, 6, cluster.settings, delivery=RECOVERY_EVERY_10_S)
    assert run.outputs == 5  # a response per ticket
    assert run.store_mb > 0


@pytest.mark.kafka
def test_the_floor_reads_the_streams_and_writes_only_its_dead_letters():
    from tests.kafka_support import Cluster

    cluster = Cluster()
    cluster.produce("streams", [Stream(f"s{i}", f"c{i % 3}", "a1") for i in range(7)] + [b"not a stream"])
    assert bench.input_records(bench.READ_ONLY, cluster.settings, {"streams": 8, "tickets": 5}) == 8
    run = bench.run_dataflow(bench.READ_ONLY, 1, 8, cluster.settings)
    assert run.outputs == 1  # the record that is not a stream, dead-lettered


def test_states_at_end_are_each_keyed_steps_states_pickled_as_a_snapshot_keeps_them():
    from dataflows import customer_stream_count
    from utopia.io.testing import TestingIO, kafka_records
    from utopia.io.testing import run as run_in_process
    from utopia.models import Stream
    from utopia.rules.listening import StreamCount
    from utopia.steps.sharding import shard_of
    from utopia.steps.snapshots import pickled

    one, other = "c-1", next(c for c in (f"c-{n}" for n in range(2, 100)) if shard_of(c) != shard_of("c-1"))
    streams = [Stream(f"s{n}", customerid=customer, artistid="a1") for n, customer in enumerate([one, one, other, one])]
    with bench.states_at_end() as ended:
        run_in_process(customer_stream_count.build(TestingIO(kafka_records(streams))), 1)

    def shard(customer, streams):  # each shard pickles its own dict of states
        state = StreamCount(customer)
        state.streams = streams
        return len(pickled({customer: state}))

    assert ended == {"StreamCount": [2, shard(one, 3) + shard(other, 1)]}


def test_state_sizes_cover_every_keyed_state_of_every_dataflow():
    from utopia.tools.generator import Sizes

    world = Sizes(customers=40, artists=8, events=12, tickets=300, streams=800, zipcodes=3)
    measured = {(size.dataflow, size.state): size for size in bench.state_sizes(world, seed=5)}
    assert sorted(measured) == [
        ("customer_stream_count", "StreamCount"),
        ("global_totals", "CustomerSeen"),
        ("global_totals", "EventTotals"),
        ("global_totals", "Totals"),
        ("most_streamed_artists", "ArtistCount"),
        ("most_streamed_artists", "ArtistNames"),
        ("most_streamed_artists", "CustomersOfArtist"),
        ("most_streamed_artists", "MostStreamed"),
        ("most_streamed_artists", "NumberOne"),
        ("must_see_venue", "EventVenue"),
        ("must_see_venue", "VenueCounts"),
        ("must_see_venue", "VenueLeader"),
        ("purchase_event_ticket", "TicketDesk"),
        ("sold_out", "ArtistFans"),
        ("sold_out", "CustomerEmail"),
        ("sold_out", "EventStatus"),
        ("sold_out", "FirstSighting"),
        ("suggested_events_genre", "GenreShard"),
        ("suggested_events_genre", "PopularWatch"),
        ("suggested_events_location", "HomeShard"),
        ("suggested_events_location", "NeighbourWatch"),
        ("suggested_events_location", "Neighbours"),
        ("suggested_events_location", "ZipTickets"),
        ("top_customer_artists", "FavouriteArtists"),
    ]
    assert measured["customer_stream_count", "StreamCount"].keys == 40  # every customer streams
    assert measured["purchase_event_ticket", "TicketDesk"].keys == 12
    assert measured["global_totals", "Totals"].keys == 1
    assert all(size.pickled > 0 for size in measured.values())


def test_the_main_bench_rewrites_the_page_and_keeps_the_sections_the_other_benches_wrote():
    old = (
        "# Benchmarks\n\nold main table\n\n<!-- delivery bench: begin -->\n\n## Delivery guarantees\n\nrows\n\n"
        "<!-- delivery bench: end -->\n\n<!-- recovery bench, 400000 customers: begin -->\nrows\n"
        "<!-- recovery bench, 400000 customers: end -->\n"
    )
    assert bench.with_sections_kept("# Benchmarks\n\nnew main table\n", old) == (
        "# Benchmarks\n\nnew main table\n\n<!-- delivery bench: begin -->\n\n## Delivery guarantees\n\nrows\n\n"
        "<!-- delivery bench: end -->\n\n<!-- recovery bench, 400000 customers: begin -->\nrows\n"
        "<!-- recovery bench, 400000 customers: end -->\n"
    )
    assert bench.with_sections_kept("# Benchmarks\n\nnew main table\n", "") == "# Benchmarks\n\nnew main table\n"


@pytest.mark.kafka
def test_the_order_bench_writes_both_orders_cost_memory_and_latency_into_its_section(tmp_path, monkeypatch):
    world = {"customers": 30, "artists": 5, "events": 5, "tickets": 60, "streams": 300}
    page = tmp_path / "benchmarks.md"
    page.write_text("# Benchmarks\n\nmain table\n")
    options = [f"--{size}={count}" for size, count in world.items()]
    quick = ["--dataflows", "customer_stream_count", "--repeat", "1", "--seconds", "2", "--rate", "20"]
    monkeypatch.setattr(sys, "argv", ["order_bench", *options, *quick, "--report", str(page)])
    try:
        order_bench.main()
    finally:
        loaded = bench.input_settings(bench.bench_sizes(argparse.Namespace(**world)), 1, 3)
        topics.delete(loaded, [loaded.topics.input(name) for name in INPUT_RECORDS])
    text = page.read_text()
    assert text.startswith(f"# Benchmarks\n\nmain table\n\n{order_bench.BEGIN}\n") and text.endswith(
        f"\n{order_bench.END}\n"
    )
    rows = {cells[0]: cells[1:] for cells in table_rows(text)}
    records, *cpu, ratio, partition_s, global_s, partition_mb, global_mb = rows["customer_stream_count"]
    assert records == "300"  # the streams, its only input
    assert all(float(cost) >= 0 for cost in cpu) and ratio.endswith("x")
    assert float(partition_s) > 0 and float(global_s) > 0
    for peaks in (partition_mb, global_mb):  # each of the 2 processes' own
        assert [float(mb) > 0 for mb in peaks.split(" / ")] == [True, True]
    for order in ("partition", "global"):
        tickets, median, p95, most = map(float, rows[order])
        assert 39 <= tickets <= 41  # 20 a second for 2 s, each answered
        assert 0 < median <= p95 <= most < 30


def table_rows(page: str) -> list[list[str]]:
    """The cells of every line of the page's tables, headers included, but their rules (`|---|`)."""
    lines = [line for line in page.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]
