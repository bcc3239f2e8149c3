"""Decoding the data-demo JSON, and every kind of bad value going to the dead-letter topic (SPEC 1)."""

import base64

import pytest

from utopia.codec import Decoder, InRecord
from utopia.config import Topics
from utopia.dates import format_instant, parse_eventdate
from utopia.models import Address, Email, Event, Stream, Ticket

DECODER = Decoder("sold_out", Topics(), {Event: [], Ticket: ["eventid"], Email: ["customerid"], Address: []})


def decode(topic: str, value: bytes | None, key: str | None = "k1"):
    return DECODER.decode([InRecord(f"data-demo-{topic}", 2, 17, key, value, 0)])


def dead_letter(topic: str, value: bytes) -> dict:
    decoded = decode(topic, value)
    assert decoded.records == []
    [(key, letter)] = decoded.dead
    return {f: getattr(letter, f) for f in letter.__struct_fields__}


def test_decodes_what_the_java_producer_writes():
    value = (b'{"id":"e1","artistid":"a1","venueid":"v1","capacity":300,'
             b'"eventdate":"Mon Mar 01 20:00:00 UTC 2027","promoter":"ignored"}')
    assert decode("events", value).records == [Event("e1", "a1", "v1", 300, "Mon Mar 01 20:00:00 UTC 2027")]


def test_missing_optional_fields_are_null():
    assert decode("tickets", b'{"id":"t1","eventid":"e1"}').records == [Ticket("t1", None, "e1", None)]


def test_a_whole_number_price_is_a_number():
    assert decode("tickets", b'{"id":"t1","eventid":"e1","price":50}').records[0].price == 50.0


def test_tombstone_is_skipped_not_an_error():
    decoded = decode("tickets", None)
    assert (decoded.records, decoded.dead) == ([], [])


@pytest.mark.parametrize(("value", "error"), [
    (b"{not json", "not valid JSON: JSON is malformed: object keys must be strings (byte 1)"),
    (b"[1,2]", "not a JSON object: Expected `object`, got `array`"),
    (b'"just text"', "not a JSON object: Expected `object`, got `str`"),
    (b'{"eventid":"e1"}', "missing field: Object missing required field `id`"),
    (b'{"id":"t1"}', "missing field: Object missing required field `eventid`"),
    (b'{"id":"t1","eventid":null}', "missing field: Object missing required field `eventid`"),
    (b'{"id":"t1","eventid":"e1","price":"cheap"}', "wrong type: Expected `float | null`, got `str` - at `$.price`"),
    (b'{"id":5,"eventid":"e1"}', "wrong type: Expected `str`, got `int` - at `$.id`"),
])
def test_bad_ticket_values_become_dead_letters(value, error):
    assert dead_letter("tickets", value) == {
        "dataflow": "sold_out", "topic": "data-demo-tickets", "partition": 2, "offset": 17,
        "key": "k1", "value": value.decode(), "error": error, "encoding": None,
    }


def test_wrong_type_in_a_field_the_scenario_does_not_use_is_still_bad():
    letter = dead_letter("addresses", b'{"id":"ad1","type":"VENUE","zip5":12345}')
    assert letter["error"] == "wrong type: Expected `str | null`, got `int` - at `$.zip5`"


def test_capacity_must_be_an_integer():
    assert dead_letter("events", b'{"id":"e1","capacity":10.5}')["error"].startswith("wrong type:")
    assert dead_letter("events", b'{"id":"e1","capacity":10.0}')["error"].startswith("wrong type:")


def test_unparseable_eventdate_is_a_wrong_type():
    letter = dead_letter("events", b'{"id":"e1","eventdate":"next friday"}')
    assert letter["error"].startswith("wrong type: eventdate 'next friday' is neither ISO-8601")


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
    decoded = DECODER.decode(batch)
    assert [r.id for r in decoded.records] == ["t1", "e1"]
    assert [(letter.topic, letter.offset) for _, letter in decoded.dead] == [("data-demo-tickets", 1)]


def test_stream_time_is_kept_as_text():
    decoder = Decoder("x", Topics(), {Stream: ["customerid"]})
    [record] = decoder.decode([InRecord("data-demo-streams", 0, 0, None,
                                        b'{"id":"s1","customerid":"c1","streamtime":"2026-11-24T01:02:03.456Z"}')]).records
    assert record.streamtime == "2026-11-24T01:02:03.456Z"


@pytest.mark.parametrize(("text", "instant"), [
    ("2027-03-01T20:00:00Z", "2027-03-01T20:00:00Z"),
    ("2027-03-01", "2027-03-01T00:00:00Z"),
    ("2027-03-01T20:00:00", "2027-03-01T20:00:00Z"),
    ("2027-03-01T21:30:00+01:30", "2027-03-01T20:00:00Z"),
    ("2027-03-01T20:00:00.250Z", "2027-03-01T20:00:00.250Z"),
    ("Mon Mar 01 20:00:00 UTC 2027", "2027-03-01T20:00:00Z"),
    ("Mon Mar 01 20:00:00 GMT 2027", "2027-03-01T20:00:00Z"),
])
def test_eventdate_formats(text, instant):
    assert format_instant(parse_eventdate(text)) == instant


@pytest.mark.parametrize("text", ["Mon Mar 01 20:00:00 PST 2027", "01/03/2027", "", "2027-02-30"])
def test_eventdate_rejects(text):
    with pytest.raises(ValueError):
        parse_eventdate(text)
