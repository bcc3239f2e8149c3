"""The bench's arithmetic: which run it reports, and the most that more processes can gain here."""

import os
import pickle
import subprocess
import sys
import time

import pytest

from utopia.config import Settings
from utopia.tools import bench
from utopia.tools.bench import Run, _cpu_seconds, local_broker, median_run


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
    seconds = iter([5.0, 0.4, 3.0, 0.6, 9.0, 0.8,
                    4.0, 0.5, 2.0, 0.7, 8.0, 0.9,
                    6.0, 0.3, 2.5, 0.9, 7.0, 0.6])

    def fake_run(name, workers, records, settings, separate=False):
        calls.append((workers, records, separate))
        return Run(name, workers, records * (workers if separate else 1), next(seconds), 100.0,
                   cpu=float(len(calls)), separate=separate)

    monkeypatch.setattr(bench, "run_dataflow", fake_run)
    monkeypatch.setattr(bench, "host_speed", lambda: 0.1)
    speeds: list[float] = []
    one, two, apart = bench.measure("top_customer_artists", [1, 2], 1_000_000, None, None, 3, speeds)
    assert calls == [(1, 1_000_000, False), (1, 0, False), (2, 1_000_000, False), (2, 0, False),
                     (2, 1_000_000, True), (2, 0, True)] * 3
    assert speeds == [0.1, 0.1, 0.1]
    assert (one.workers, one.seconds, one.startup) == (1, 5.0, 0.4)
    assert (two.workers, two.seconds, two.startup) == (2, 2.5, 0.7)
    assert (apart.separate, apart.records, apart.seconds, apart.startup) == (True, 2_000_000, 8.0, 0.8)
    assert (one.cpu, one.startup_cpu, two.cpu, two.startup_cpu) == (1.0, 2.0, 15.0, 10.0)  # the medians' own
    # the cost per record: the median CPU of the runs (1, 7, 13: each call's number) less that of their start-ups
    assert (one.records_cpu, two.records_cpu, apart.records_cpu) == (7.0 - 8.0, 9.0 - 10.0, 11.0 - 12.0)


def test_the_cost_per_record_takes_start_up_off_and_compares_with_one_worker():
    runs = [Run("sold_out", 1, 1_000_000, 4.0, 100.0, cpu=4.5, startup_cpu=0.5),
            Run("sold_out", 2, 1_000_000, 3.0, 100.0, cpu=6.0, startup_cpu=1.0),
            Run("sold_out", 2, 2_000_000, 5.0, 100.0, cpu=11.0, startup_cpu=1.0, separate=True)]
    assert [r.cpu_per_million for r in runs] == [4.0, 5.0, 5.0]
    assert bench.cost_table(runs)[-1] == "| sold_out | 4.00 | 5.00 | 1.25x | 5.00 | 1.25x |"


def test_the_instruction_count_child_runs_a_dataflow_on_its_input_and_says_how_many_records_it_read(tmp_path):
    from utopia.io.testing import kafka_records
    from utopia.models import Customer, Stream

    records = kafka_records([Customer(id="c1"), Stream(id="s1", customerid="c1", artistid="a1"),
                             Stream(id="s2", customerid="c1", artistid="a2")])
    (tmp_path / "records.pickle").write_bytes(pickle.dumps(records))
    done = subprocess.run([sys.executable, "-m", "utopia.tools.instructions", "--child", "customer_stream_count",
                           str(tmp_path / "records.pickle")], capture_output=True, text=True)
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
    done = subprocess.run([sys.executable, "-m", "utopia.tools.instructions", "--child", "purchase_event_ticket",
                           str(tmp_path / "bundles.pickle"), "--crossing"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    counted = sum(len(pairs) for bundle in bundles[len(bundles) // 2 :] for _, pairs in bundle)
    assert 0 < counted < 2502 and done.stderr.splitlines()[-1] == f"crossing records: {counted}"


def test_states_at_end_are_each_keyed_steps_states_pickled_as_a_snapshot_keeps_them():
    from dataflows import customer_stream_count
    from utopia.io.testing import TestingIO, kafka_records
    from utopia.io.testing import run as run_in_process
    from utopia.models import Stream
    from utopia.rules.listening import StreamCount
    from utopia.steps.sharding import shard_of

    one, other = "c-1", next(c for c in (f"c-{n}" for n in range(2, 100)) if shard_of(c) != shard_of("c-1"))
    streams = [Stream(f"s{n}", customerid=customer, artistid="a1") for n, customer in enumerate([one, one, other, one])]
    with bench.states_at_end() as ended:
        run_in_process(customer_stream_count.build(TestingIO(kafka_records(streams))), 1)

    def shard(customer, streams):  # each shard pickles its own dict of states
        state = StreamCount(customer)
        state.streams = streams
        return len(pickle.dumps({customer: state}, pickle.HIGHEST_PROTOCOL))

    assert ended == {"StreamCount": [2, shard(one, 3) + shard(other, 1)]}


def test_state_sizes_cover_every_keyed_state_of_every_dataflow():
    from utopia.tools.generator import Sizes

    world = Sizes(customers=40, artists=8, events=12, tickets=300, streams=800, zipcodes=3)
    measured = {(size.dataflow, size.state): size for size in bench.state_sizes(world, seed=5)}
    assert sorted(measured) == [
        ("customer_stream_count", "StreamCount"),
        ("global_totals", "CustomerSeen"), ("global_totals", "EventTotals"), ("global_totals", "Totals"),
        ("most_streamed_artists", "ArtistCount"), ("most_streamed_artists", "ArtistNames"),
        ("most_streamed_artists", "CustomersOfArtist"), ("most_streamed_artists", "MostStreamed"),
        ("most_streamed_artists", "NumberOne"),
        ("must_see_venue", "EventVenue"), ("must_see_venue", "VenueCounts"), ("must_see_venue", "VenueLeader"),
        ("purchase_event_ticket", "TicketDesk"),
        ("sold_out", "ArtistFans"), ("sold_out", "CustomerEmail"), ("sold_out", "EventStatus"),
        ("sold_out", "FirstSighting"),
        ("suggested_events_genre", "GenreShard"), ("suggested_events_genre", "PopularWatch"),
        ("suggested_events_location", "HomeShard"), ("suggested_events_location", "NeighbourWatch"),
        ("suggested_events_location", "Neighbours"), ("suggested_events_location", "ZipTickets"),
        ("top_customer_artists", "FavouriteArtists"),
    ]
    assert measured["customer_stream_count", "StreamCount"].keys == 40  # every customer streams
    assert measured["purchase_event_ticket", "TicketDesk"].keys == 12
    assert measured["global_totals", "Totals"].keys == 1
    assert all(size.pickled > 0 for size in measured.values())
