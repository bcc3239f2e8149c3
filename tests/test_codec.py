"""Decoding the data-demo JSON, and every kind of bad value going to the dead-letter topic.

See docs/outputs.md#dead-letters.
"""

import base64
import logging
from zoneinfo import ZoneInfo

import msgspec
import pytest

from utopia.codec import Decoder, InRecord, RecordBatch
from utopia.config import Topics
from utopia.dates import UnknownDate, format_instant, instant_ms, instants_ms, parse_eventdate
from utopia.models import Address, Artist, Customer, Email, Event, Phone, Stream, Ticket, Venue

DECODER = Decoder("sold_out", Topics(), {Event: [], Ticket: ["eventid"], Email: ["customerid"], Address: []})


def decode(topic: str, value: bytes | None, key: str | None = "k1", decoder: Decoder = DECODER):
    return decoder.decode(RecordBatch([InRecord(f"data-demo-{topic}", 2, 17, key, value, 0)]))


def dead_letter(topic: str, value: bytes) -> dict:
    decoded = decode(topic, value)
    assert decoded.records == []
    [(key, letter)] = decoded.dead
    return msgspec.json.decode(msgspec.json.encode(letter))  # as written: the fields that say something


# Records exactly as the Java data-demo producer's Kafka daemon serializes them (each keyed by its id).
REAL_RECORDS = [
    (
        "customers",
        b'{"id":"858367285","type":"FREE","gender":"N","fname":"Ava","mname":"Trevor","lname":"Schaden",'
        b'"fullname":"Ava Trevor Schaden","suffix":"I","title":"Regional Metrics Specialist",'
        b'"birthdt":"1971-08-31","joindt":"1991-01-29"}',
        Customer(
            "858367285",
            "FREE",
            "N",
            "Ava",
            "Trevor",
            "Schaden",
            "Ava Trevor Schaden",
            "I",
            "Regional Metrics Specialist",
            "1971-08-31",
            "1991-01-29",
        ),
    ),
    (
        "addresses",
        b'{"id":"528832524","customerid":"858367285","formatcode":"US","type":"RESID",'
        b'"line1":"34267 Ratke Manors","line2":"PO Box 693","citynm":"Zcta 70471","state":"LA",'
        b'"zip5":"70471","zip4":"4513","countrycd":"US","latitude":null,"longitude":null}',
        Address(
            "528832524",
            "858367285",
            "US",
            "RESID",
            "34267 Ratke Manors",
            "PO Box 693",
            "Zcta 70471",
            "LA",
            "70471",
            "4513",
            "US",
            None,
            None,
        ),
    ),
    (
        "addresses",
        b'{"id":"7eda1a90-f3c0-4dd4-996e-fbf10c3a8e4e","customerid":null,"formatcode":"US",'
        b'"type":"VENUE","line1":"54 Silica Rd NW","line2":null,"citynm":"Quincy","state":"WA",'
        b'"zip5":"98848","zip4":null,"countrycd":"US","latitude":47.101,"longitude":-119.9955}',
        Address(
            "7eda1a90-f3c0-4dd4-996e-fbf10c3a8e4e",
            None,
            "US",
            "VENUE",
            "54 Silica Rd NW",
            None,
            "Quincy",
            "WA",
            "98848",
            None,
            "US",
            47.101,
            -119.9955,
        ),
    ),
    (
        "emails",
        b'{"id":"516961572","customerid":"858367285","email":"brittaney.kozey@gmx.com"}',
        Email("516961572", "858367285", "brittaney.kozey@gmx.com"),
    ),
    (
        "phones",
        b'{"id":"243499078","customerid":"858367285","phonetypecd":"RESID","primaryind":"N",'
        b'"timezone":"HST","extnbr":"1221","number":"(715) 859-8506 x2878"}',
        Phone("243499078", "858367285", "RESID", "N", "HST", "1221", "(715) 859-8506 x2878"),
    ),
    ("artists", b'{"id":"725616797","name":"Da Vinci","genre":"Pop"}', Artist("725616797", "Da Vinci", "Pop")),
    (
        "venues",
        b'{"id":"47b5125a-321f-4072-bed5-615402046255","addressid":"7eda1a90-f3c0-4dd4-996e-fbf10c3a8e4e",'
        b'"name":"The Gorge Amphitheater","maxcapacity":27500}',
        Venue(
            "47b5125a-321f-4072-bed5-615402046255",
            "7eda1a90-f3c0-4dd4-996e-fbf10c3a8e4e",
            "The Gorge Amphitheater",
            27500,
        ),
    ),
    (
        "events",
        b'{"id":"767460977","artistid":"517721237","venueid":"ac6bc19e-2144-4d9f-927c-7297abb2110a",'
        b'"capacity":2648,"eventdate":"2027-06-26 21:19:45.676"}',
        Event("767460977", "517721237", "ac6bc19e-2144-4d9f-927c-7297abb2110a", 2648, "2027-06-26T21:19:45.676Z"),
    ),
    (
        "tickets",
        b'{"id":"369002142","customerid":"123107541","eventid":"183315375","price":1858.0}',
        Ticket("369002142", "123107541", "183315375", 1858.0),
    ),
    (
        "streams",
        b'{"id":"480699684","customerid":"449229512","artistid":"631356236",'
        b'"streamtime":"2026-11-25T15:32:36.174948692Z"}',
        Stream("480699684", "449229512", "631356236", "2026-11-25T15:32:36.174948692Z"),
    ),
]
EVERY_TOPIC = Decoder("x", Topics(), {type(record): [] for _, _, record in REAL_RECORDS})


@pytest.mark.parametrize(("topic", "value", "record"), REAL_RECORDS, ids=[t for t, _, _ in REAL_RECORDS])
def test_decodes_what_the_java_producer_writes(topic, value, record):
    decoded = decode(topic, value, key=record.id, decoder=EVERY_TOPIC)
    assert (decoded.records, decoded.dead) == ([record], [])


def test_ids_keep_their_leading_zeros():
    [ticket] = decode("tickets", b'{"id":"098646935","customerid":"000000001","eventid":"012"}').records
    assert (ticket.id, ticket.customerid, ticket.eventid) == ("098646935", "000000001", "012")


def test_unknown_fields_are_ignored():
    value = b'{"id":"e1","artistid":"a1","capacity":300,"eventdate":"2027-03-01 20:00:00.0","promoter":"x"}'
    assert decode("events", value).records == [Event("e1", "a1", None, 300, "2027-03-01T20:00:00Z")]


def test_missing_optional_fields_are_null():
    assert decode("tickets", b'{"id":"t1","eventid":"e1"}').records == [Ticket("t1", None, "e1", None)]


def test_a_whole_number_price_is_a_number():
    assert decode("tickets", b'{"id":"t1","eventid":"e1","price":50}').records[0].price == 50.0


def test_tombstone_is_skipped_not_an_error():
    decoded = decode("tickets", None)
    assert (decoded.records, decoded.dead) == ([], [])
    assert not decoded.caught_up  # a record was read: only a batch of none says its lane is caught up
    assert DECODER.decode(RecordBatch([], 3, 17)).caught_up


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (b"{not json", "not valid JSON: JSON is malformed: object keys must be strings (byte 1)"),
        (b"[1,2]", "not a JSON object: Expected `object`, got `array`"),
        (b'"just text"', "not a JSON object: Expected `object`, got `str`"),
        (b'{"eventid":"e1"}', "missing field: Object missing required field `id`"),
        (b'{"id":"t1"}', "missing field: Object missing required field `eventid`"),
        (b'{"id":"t1","eventid":null}', "missing field: Object missing required field `eventid`"),
        (
            b'{"id":"t1","eventid":"e1","price":"cheap"}',
            "wrong type: Expected `float | null`, got `str` - at `$.price`",
        ),
        (b'{"id":5,"eventid":"e1"}', "wrong type: Expected `str`, got `int` - at `$.id`"),
    ],
)
def test_bad_ticket_values_become_dead_letters(value, error):
    assert dead_letter("tickets", value) == {
        "dataflow": "sold_out",
        "topic": "data-demo-tickets",
        "partition": 2,
        "offset": 17,
        "key": "k1",
        "value": value.decode(),
        "error": error,
    }


def test_wrong_type_in_a_field_the_scenario_does_not_use_is_still_bad():
    letter = dead_letter("addresses", b'{"id":"ad1","type":"VENUE","zip5":12345}')
    assert letter["error"] == "wrong type: Expected `str | null`, got `int` - at `$.zip5`"


def test_capacity_must_be_an_integer():
    assert dead_letter("events", b'{"id":"e1","capacity":10.5}')["error"].startswith("wrong type:")
    assert dead_letter("events", b'{"id":"e1","capacity":10.0}')["error"].startswith("wrong type:")


def test_an_eventdate_in_no_known_form_leaves_the_event_with_its_date_unknown(caplog):
    decoder = Decoder("x", Topics(), {Event: []})
    with caplog.at_level(logging.WARNING, "utopia"):
        for _ in range(2):  # logged once per event, not per record
            decoded = decode("events", b'{"id":"e1","capacity":5,"eventdate":"today"}', decoder=decoder)
            assert (decoded.records, decoded.dead) == ([Event("e1", capacity=5, eventdate=None)], [])
    assert [r.getMessage() for r in caplog.records] == [
        "event e1: eventdate 'today' is in no accepted form; its date is unknown (null)"
    ]


def test_an_eventdate_of_the_wrong_type_is_still_bad():
    assert dead_letter("events", b'{"id":"e1","eventdate":20270301}')["error"] == (
        "wrong type: Expected `str | null`, got `int` - at `$.eventdate`"
    )


def test_zone_less_event_dates_are_read_in_the_producers_zone():
    chicago = Decoder("x", Topics(), {Event: []}, ZoneInfo("America/Chicago"))
    summer = b'{"id":"e1","eventdate":"2027-06-26 21:19:45.676"}'  # CDT, UTC-5
    winter = b'{"id":"e2","eventdate":"2027-01-26 21:19:45.6"}'  # CST, UTC-6
    assert decode("events", summer, decoder=chicago).records[0].eventdate == "2027-06-27T02:19:45.676Z"
    assert decode("events", winter, decoder=chicago).records[0].eventdate == "2027-01-27T03:19:45.600Z"
    zoned = b'{"id":"e3","eventdate":"2027-06-26T21:19:45Z"}'  # a date with its own zone keeps it
    assert decode("events", zoned, decoder=chicago).records[0].eventdate == "2027-06-26T21:19:45Z"


def test_non_utf8_value_is_kept_as_base64():
    raw = b'{"id":"t1","eventid":"\xff\xfe"}'
    letter = dead_letter("tickets", raw)
    assert (letter["value"], letter["encoding"]) == (base64.b64encode(raw).decode(), "base64")
    assert letter["error"] == "not UTF-8: the value is not valid UTF-8 text"


def test_venue_address_needs_no_customer_but_an_email_does():
    assert decode("addresses", b'{"id":"ad1","type":"VENUE"}').records == [Address("ad1", type="VENUE")]
    assert dead_letter("emails", b'{"id":"m1","email":"x@y.z"}')["error"] == (
        "missing field: Object missing required field `customerid`"
    )


def test_good_records_keep_input_order_around_bad_ones():
    batch = [
        InRecord("data-demo-tickets", 0, 0, "t1", b'{"id":"t1","eventid":"e1"}'),
        InRecord("data-demo-tickets", 0, 1, None, b"junk"),
        InRecord("data-demo-events", 0, 0, "e1", b'{"id":"e1"}'),
    ]
    decoded = DECODER.decode(RecordBatch(batch))
    assert [r.id for r in decoded.records] == ["t1", "e1"]
    assert [(letter.topic, letter.offset) for _, letter in decoded.dead] == [("data-demo-tickets", 1)]


def test_stream_time_is_kept_as_text():
    decoder = Decoder("x", Topics(), {Stream: ["customerid"]})
    value = b'{"id":"s1","customerid":"c1","streamtime":"2026-11-24T01:02:03.456Z"}'
    [record] = decoder.decode(RecordBatch([InRecord("data-demo-streams", 0, 0, None, value)])).records
    assert record.streamtime == "2026-11-24T01:02:03.456Z"


@pytest.mark.parametrize(
    ("text", "instant"),
    [
        ("2027-06-26 21:19:45.676", "2027-06-26T21:19:45.676Z"),  # java.sql.Timestamp.toString(), the daemon's form
        ("2027-06-26 21:19:45.58", "2027-06-26T21:19:45.580Z"),
        ("2027-06-26 21:19:45.6", "2027-06-26T21:19:45.600Z"),
        ("2027-06-26 21:19:45.0", "2027-06-26T21:19:45Z"),
        ("2027-06-26 21:19:45.123456789", "2027-06-26T21:19:45.123Z"),  # cut, not rounded
        ("2027-06-26 21:19:45.999999999", "2027-06-26T21:19:45.999Z"),
        ("2027-03-01T20:00:00Z", "2027-03-01T20:00:00Z"),
        ("2027-03-01", "2027-03-01T00:00:00Z"),
        ("2027-03-01T20:00:00", "2027-03-01T20:00:00Z"),
        ("2027-03-01T21:30:00+01:30", "2027-03-01T20:00:00Z"),
        ("2027-03-01T20:00:00.250Z", "2027-03-01T20:00:00.250Z"),
        ("2026-11-25T15:32:36.174948692Z", "2026-11-25T15:32:36.174Z"),
        ("Mon Mar 01 20:00:00 UTC 2027", "2027-03-01T20:00:00Z"),
        ("Mon Mar 01 20:00:00 GMT 2027", "2027-03-01T20:00:00Z"),
        ("Mon Mar 01 14:00:00 CST 2027", "2027-03-01T20:00:00Z"),  # Date.toString() is read with its own zone
        ("Sat Jun 26 16:19:45 CDT 2027", "2027-06-26T21:19:45Z"),
    ],
)
def test_eventdate_forms(text, instant):
    assert format_instant(parse_eventdate(text)) == instant


@pytest.mark.parametrize(
    ("text", "instant"),
    [
        ("2027-06-26 21:19:45.676", "2027-06-27T02:19:45.676Z"),
        ("2027-06-26", "2027-06-26T05:00:00Z"),  # a date alone is midnight there
        ("2027-06-26T21:19:45+00:00", "2027-06-26T21:19:45Z"),
        ("Sat Jun 26 21:19:45 UTC 2027", "2027-06-26T21:19:45Z"),
    ],
)
def test_eventdate_without_a_zone_is_in_the_configured_zone(text, instant):
    assert format_instant(parse_eventdate(text, ZoneInfo("America/Chicago"))) == instant


@pytest.mark.parametrize(
    "text",
    [
        "today",
        "Mon Mar 01 20:00:00 XYZ 2027",
        "01/03/2027",
        "",
        "2027-02-30",
        "2027-06-26 25:19:45.676",
        "2027-06-26 21:19:45.",
        "2027-06-26 21:19:45.1234567890",
    ],
)
def test_eventdate_in_no_accepted_form(text):
    with pytest.raises(UnknownDate):
        parse_eventdate(text)


def test_stream_times_of_a_batch_are_those_read_one_by_one():
    second = 1795482123000
    usual = ["2026-11-24T01:02:03.456Z", "2026-11-24T01:02:03Z", "1969-12-31T23:59:59.999Z"]
    assert instants_ms(usual) == [second + 456, second, -1]  # a batch of the usual forms: read by msgspec
    others = {
        "2026-11-24T01:02:03.4Z": second + 400,
        "2026-11-24T01:02:03.4567Z": second + 456,  # cut, not rounded
        "2026-11-24T01:02:03.9999999Z": second + 999,  # msgspec would round it to the next second
        "2026-11-24T02:02:03.456+01:00": second + 456,
        "2026-11-24T01:02:03.45xZ": None,
        "2026-11-24T01:02:03. 45Z": None,
        "2026-11-24T01:02:60.000Z": None,
        "2026-11-24T24:00:00.000Z": None,
        "2026-02-29T01:02:03.456Z": None,
        "0000-01-01T00:00:00.000Z": None,
        "x" * 24: None,
        None: None,
    }
    for text, instant in others.items():  # each in a batch of the usual form, which it sends one by one
        assert (
            instants_ms([*usual, text]) == [second + 456, second, -1, instant] == list(map(instant_ms, [*usual, text]))
        )


@pytest.mark.parametrize("usual", ["2026-11-24T01:02:03.456Z", "2026-11-24T01:02:03Z"])
def test_stream_times_of_a_batch_are_those_read_one_by_one_whatever_character_is_changed(usual):
    edited = [usual[:at] + c + usual[at + 1 :] for at in range(len(usual)) for c in "01569:.-TZtz x\u0663"]
    assert sum(instant_ms(text) is None for text in edited) > len(edited) // 2  # what instant_ms refuses
    for text in edited:
        assert instants_ms([usual, text]) == [instant_ms(usual), instant_ms(text)]


def test_a_key_that_is_not_utf8_is_kept_as_base64_too():
    from confluent_kafka import Message

    from utopia.codec import KafkaBatch
    from utopia.codec import dead_letter as letter_of

    message = Message(topic="data-demo-tickets", partition=1, offset=7, key=b"\xff\x00k", value=b"{not json")
    key, letter = letter_of("sold_out", KafkaBatch.record(message), "not valid JSON")
    assert key == b"\xff\x00k"  # the dead letter's own Kafka key: the bytes as they came
    assert (letter.key, letter.key_encoding) == (base64.b64encode(b"\xff\x00k").decode(), "base64")


def test_a_dead_letter_too_large_for_a_message_is_cut_to_fit_with_the_size_and_hash_of_what_was_cut():
    import hashlib

    from utopia.codec import encode, fit
    from utopia.models import DeadLetter

    value = "é" * 300_000 + "\n" * 1000  # multi-byte characters and escapes: bytes are not characters
    letter = DeadLetter("sold_out", "data-demo-tickets", 0, 9, "t-9", value, "not valid JSON")
    cut = fit(letter, 100_000)
    assert 99_000 < len(encode(cut)) <= 100_000
    assert value.startswith(cut.value)
    assert (cut.value_bytes, cut.value_sha256) == (len(value.encode()), hashlib.sha256(value.encode()).hexdigest())
    assert (cut.key, cut.key_bytes, cut.error) == ("t-9", None, "not valid JSON")
    assert fit(cut, 100_000) == cut  # what fits is left alone


def test_an_output_too_large_for_a_message_becomes_a_dead_letter_that_fits():
    from utopia.codec import encode, too_large

    customer = "c" * 600_000
    output = encode({"customerid": customer, "streams": 1})
    letter = too_large("customer_stream_count", "kafka-workshop-customer-stream-count", customer, output, 1_000_000)
    assert len(encode(letter)) <= 1_000_000
    assert (letter.topic, letter.partition, letter.offset) == ("kafka-workshop-customer-stream-count", -1, -1)
    assert letter.error == (
        "output too large: 1,200,029 bytes with its key, more than the 1,000,000 a message may have"
    )
    assert letter.value_bytes == len(output) and output.decode().startswith(letter.value)
    assert letter.key == customer  # with a value cut to 400 KB, the key fits whole
