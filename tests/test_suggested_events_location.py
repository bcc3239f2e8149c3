"""Suggested events by location: tickets per zip, and neighbours told when a purchase finds an event 90% sold."""

from collections import Counter

from hypothesis import given, settings

from dataflows import suggested_events_location
from tests import reference
from tests.conftest import plain
from tests.strategies import location_log
from utopia.io.testing import TestingIO, kafka_records, run
from utopia.models import Address, Event, Ticket

EVERY_WAY = [(1, 1), (1, 3), (7, 1), (7, 3), (1000, 1), (1000, 3)]  # (batch size, workers)


def run_it(records, workers=1, batch_size=4):
    io = TestingIO(kafka_records(records), batch_size=batch_size)
    run(suggested_events_location.build(io), workers)
    return io


def outcome(io):
    """(tickets per zip, sorted alerts as (customer, zip, event, buyer)): keys are processed in parallel shards."""
    per_zip = {key: value.tickets for key, value in io.outputs["zipcode-tickets"]}
    alerts = sorted((k, v.zip5, v.eventid, v.buyer_customerid) for k, v in io.outputs["zipcode-popular-event-alerts"])
    return per_zip, alerts


def every_way(records):
    """The outcome, the same whatever the batch size and the number of workers."""
    results = [outcome(run_it(records, workers, batch_size)) for batch_size, workers in EVERY_WAY]
    assert all(result == results[0] for result in results), results
    return results[0]


def home(customer, zip5, n=1):
    return Address(f"ad-{customer}-{n}", customerid=customer, type="RESID", zip5=zip5)


def event(capacity, eventid="e1"):
    return Event(eventid, artistid="a1", venueid="v1", capacity=capacity)


def ticket(n, customer, eventid="e1"):
    return Ticket(f"t{n}", customerid=customer, eventid=eventid, price=20.0)


NEIGHBOURS = [home("ann", "11111"), home("bob", "11111"), home("cat", "11111"), home("dan", "22222")]


def test_a_purchase_that_finds_the_event_90_percent_sold_tells_the_buyers_neighbours_without_a_ticket():
    records = NEIGHBOURS + [event(capacity=2), ticket(1, "dan"), ticket(2, "ann")]
    # t1: 1 of 2 sold (50%); t2: 2 of 2. ann's neighbours bob and cat are told; dan lives elsewhere.
    assert every_way(records) == (
        {"22222": 1, "11111": 1},
        [("bob", "11111", "e1", "ann"), ("cat", "11111", "e1", "ann")],
    )
    assert plain(run_it(records).outputs["zipcode-popular-event-alerts"][0][1]) in (
        {"customerid": "bob", "zip5": "11111", "eventid": "e1", "buyer_customerid": "ann"},
        {"customerid": "cat", "zip5": "11111", "eventid": "e1", "buyer_customerid": "ann"},
    )


def test_tickets_before_the_buyers_home_wait_for_it_and_count_in_its_zip():
    records = [
        event(capacity=10),
        ticket(1, "ann"),
        ticket(2, "ann"),
        home("bob", "22222"),
        home("ann", "11111"),
        ticket(3, "bob"),
    ]
    assert every_way(records) == ({"11111": 2, "22222": 1}, [])


def test_a_held_ticket_counts_when_its_home_arrives_and_can_make_the_event_popular_then():
    # Capacity 2: ann's ticket waits for her home; bob's sells first (1 of 2), ann's second (2 of 2).
    records = [
        home("bob", "11111"),
        home("cat", "11111"),
        event(capacity=2),
        ticket(1, "ann"),
        ticket(2, "bob"),
        home("ann", "11111"),
    ]
    assert every_way(records) == ({"11111": 2}, [("cat", "11111", "e1", "ann")])


def test_a_customer_who_moves_counts_in_the_new_zip_from_then_on():
    records = [home("ann", "11111"), event(capacity=100), ticket(1, "ann"), home("ann", "22222", n=2), ticket(2, "ann")]
    assert every_way(records) == ({"11111": 1, "22222": 1}, [])


def test_a_move_between_two_purchases_changes_who_the_neighbours_are():
    # Capacity 2, ten tickets: every purchase from the second on finds the event popular.
    records = NEIGHBOURS + [
        event(capacity=2),
        ticket(1, "dan"),
        ticket(2, "dan"),  # nobody else in 22222
        home("bob", "22222", n=2),
        ticket(3, "dan"),
    ]  # now bob is
    assert every_way(records) == ({"22222": 3}, [("bob", "22222", "e1", "dan")])


def test_a_neighbour_who_already_holds_a_ticket_is_not_told():
    records = NEIGHBOURS + [event(capacity=2), ticket(1, "bob"), ticket(2, "ann")]
    assert every_way(records)[1] == [("cat", "11111", "e1", "ann")]


def test_two_buyers_from_one_zip_for_the_same_popular_event_tell_each_neighbour_once():
    records = NEIGHBOURS + [event(capacity=2), ticket(1, "dan"), ticket(2, "ann"), ticket(3, "bob")]
    # t2 tells bob and cat; t3 (bob's) would tell ann and cat, but ann holds a ticket and cat was told.
    assert every_way(records)[1] == [("bob", "11111", "e1", "ann"), ("cat", "11111", "e1", "ann")]


def test_a_customer_with_two_resid_addresses_lives_at_the_one_applied_last():
    records = [
        home("ann", "11111", n=1),
        home("ann", "22222", n=2),
        home("bob", "11111"),
        home("cat", "22222"),
        event(capacity=1),
        ticket(1, "bob"),
    ]
    assert every_way(records) == ({"11111": 1}, [])  # ann lives in 22222 now: not bob's neighbour


def test_a_venue_address_is_nobodys_home_whatever_its_zip():
    venue = Address("ad-venue", customerid=None, type="VENUE", zip5="11111")
    venue_with_customer = Address("ad-venue-2", customerid="cat", type="VENUE", zip5="11111")
    records = [home("ann", "11111"), venue, venue_with_customer, event(capacity=1), ticket(1, "ann"), ticket(2, "cat")]
    # cat has no home: the ticket waits (and is a dead letter at the end); nobody but ann lives in 11111.
    io = run_it(records)
    assert outcome(io) == ({"11111": 1}, [])
    assert [(letter.value, letter.error) for _, letter in io.outputs["dead-letters"]] == [
        (
            '{"id":"t2","customerid":"cat","eventid":"e1","price":20.0}',
            "waited for the RESID address of customer cat, which never arrived",
        )
    ]


def test_a_home_without_its_customer_is_a_dead_letter_and_processing_goes_on():
    records = [
        ("addresses", b'{"id": "ad-x", "type": "RESID", "zip5": "11111"}'),
        home("ann", "11111"),
        event(capacity=5),
        ticket(1, "ann"),
    ]
    io = run_it(records)
    assert outcome(io) == ({"11111": 1}, [])
    [(_, letter)] = io.outputs["dead-letters"]
    assert letter.topic == "data-demo-addresses" and letter.error.startswith("missing field")
    assert "customerid" in letter.error


def test_a_ticket_before_its_event_waits_and_tells_when_the_event_releases_it():
    records = [home("ann", "11111"), home("bob", "11111"), ticket(1, "ann"), event(capacity=1)]
    assert every_way(records) == ({"11111": 1}, [("bob", "11111", "e1", "ann")])


@settings(max_examples=40, deadline=None)
@given(location_log())
def test_matches_the_reference_on_random_logs(log):
    good = [r for r in log if not isinstance(r, tuple)]
    counts, alerts, unfinished = reference.location_outputs(good)
    for workers in (1, 3):
        io = run_it(log, workers=workers, batch_size=5)
        assert {k: plain(v) for k, v in io.outputs["zipcode-tickets"]} == counts
        assert Counter((k, repr(plain(v))) for k, v in io.outputs["zipcode-popular-event-alerts"]) == Counter(
            (k, repr(v)) for k, v in alerts
        )
        waited = sorted(
            (letter.key, letter.error) for _, letter in io.outputs["dead-letters"] if letter.error.startswith("waited")
        )
        assert waited == sorted(unfinished)


def test_a_processed_ticket_read_by_another_worker_than_its_event_waits_for_the_event_at_its_sales():
    # Kafka, several workers: the worker that read the event and the one that read the ticket are
    # two lanes, not ordered with each other; the ticket may reach the event's sales first.
    from utopia.rules.neighbours import LocatedTicket, NeighbourWatch
    from utopia.steps import Placed, Sequenced

    sales = NeighbourWatch("e1")
    ticket = Sequenced(2, 50, LocatedTicket("t1", "ann", "e1", "11111"), 50)
    assert list(sales.apply(ticket)) == []
    questions = list(sales.apply(Placed(1, 40, event(capacity=1))))
    assert len(questions) == 24 and {q.buyer for _, q in questions} == {"ann"}
    assert (questions[0][1].lane, questions[0][1].position) == (2, 50)


def test_a_neighbour_told_who_moves_to_another_buyers_zip_or_is_re_sent_is_not_told_again():
    records = NEIGHBOURS + [
        event(capacity=2),
        ticket(1, "dan"),
        ticket(2, "ann"),  # tells bob and cat
        home("cat", "22222", n=2),
        home("bob", "11111", n=2),  # cat moves, bob's home again
        ticket(3, "dan"),
        ticket(4, "ann"),
    ]  # asks about 22222 (cat), then 11111 (bob)
    assert every_way(records) == (
        {"11111": 2, "22222": 2},
        [("bob", "11111", "e1", "ann"), ("cat", "11111", "e1", "ann")],
    )


def test_each_of_many_neighbours_is_told_once_per_event_also_those_who_came_after_the_first_alerts():
    from utopia.steps.sharding import shard_of

    one_shard = [c for c in (f"c{n:03}" for n in range(1000)) if shard_of(c) == shard_of("c000")]
    first, later = one_shard[:10], one_shard[10:30]  # told in bits: more than a byte's worth, some came later
    records = (
        [home(c, "11111") for c in first]
        + [home("zed", "22222"), event(capacity=1), ticket(1, first[0])]
        + [home(c, "11111") for c in later]
        + [home(first[3], "22222", n=2), home(first[3], "11111", n=3)]
        + [ticket(2, "zed"), ticket(3, first[0]), event(capacity=1, eventid="e2"), ticket(4, later[-1], "e2")]
    )
    expected = (
        [(c, "11111", "e1", first[0]) for c in first[1:] + later]  # first[3] once, though it came back
        + [(c, "11111", "e2", later[-1]) for c in first + later[:-1]]
    )
    assert every_way(records) == ({"11111": 3, "22222": 1}, sorted(expected))


def test_a_snapshot_that_kept_the_names_of_those_told_resumes_with_them_told():
    import copyreg
    import io
    import pickle

    from utopia.rules.neighbours import Neighbours, PopularPurchase
    from utopia.steps import Placed

    shard = Neighbours("s1")
    for position, record in enumerate([home("ann", "11111"), home("bob", "11111"), home("cat", "11111")]):
        shard.apply(Placed(0, position, record))
    earlier = dict(shard.__getstate__()[1])  # as the version with a set of names per event pickled it
    earlier["history"] = {customer: lived[1:] for customer, lived in shard.history.items()}
    earlier["told"] = {"e1": {"bob"}}

    class EarlierVersion(pickle.Pickler):
        def reducer_override(self, obj):
            return (copyreg.__newobj__, (Neighbours,), (None, earlier)) if obj is shard else NotImplemented

    written = io.BytesIO()
    EarlierVersion(written, pickle.HIGHEST_PROTOCOL).dump(shard)
    resumed = pickle.loads(written.getvalue())
    assert [alert.customerid for _, alert in resumed.read(PopularPurchase(0, 9, 9, "e1", "11111", "ann"))] == ["cat"]
    assert resumed.read(PopularPurchase(0, 10, 10, "e2", "11111", "ann"))[0][1].customerid == "bob"
    assert pickle.loads(pickle.dumps(resumed)).told == resumed.told
