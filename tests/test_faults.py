"""Faults told once and clearly: repeated client lines held back, the broker lost and back, a lost peer."""

import logging
import sys
import time

from confluent_kafka import KafkaError

from utopia.io.faults import BrokerWatch, RepeatFilter, peer_lost_hook


def record(text):
    return logging.LogRecord("utopia.kafka", logging.WARNING, __file__, 1, text, None, None)


def test_a_repeated_line_is_let_through_once_then_as_a_count_every_window():
    now = [0.0]
    repeats = RepeatFilter(window_s=30, clock=lambda: now[0])
    passed = []
    for second in range(0, 65):  # the same failure every second, with a changing number in it
        now[0] = float(second)
        line = record(
            f"localhost:9092/1: Connect to ipv4#127.0.0.1:9092 failed: Connection refused (after {second} ms)"
        )
        if repeats.filter(line):
            passed.append(line.getMessage())
    assert len(passed) == 3  # at 0 s, 30 s and 60 s
    assert passed[1].endswith("(29 more like it in the last 30 s)")
    assert repeats.filter(record("another line"))


def test_the_broker_lost_and_back_is_told_once_each(caplog):
    watch = BrokerWatch("localhost:9092", ask=lambda: False)
    down = KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down")
    with caplog.at_level(logging.WARNING, logger="utopia"):
        for _ in range(5):
            watch.error(down)
        watch.error(KafkaError(KafkaError._TRANSPORT, "Connection refused"))  # librdkafka retries: no line
        for _ in range(3):
            watch.answered()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert lines[0].startswith("Kafka at localhost:9092 is unreachable (1/1 brokers are down)")
    assert lines[1].startswith("Kafka at localhost:9092 answers again, after ")


def test_the_broker_back_is_told_when_it_answers_a_request_with_no_record_coming(caplog):
    answers = iter([False, False, True])
    asked = []

    def ask():
        asked.append(time.monotonic())
        return next(answers)

    watch = BrokerWatch("localhost:9092", ask, ask_every_s=0.05)
    with caplog.at_level(logging.WARNING, logger="utopia"):
        watch.error(KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))
        watch.error(KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))  # one asker only
        deadline = time.monotonic() + 30
        while watch.lost_at is not None and time.monotonic() < deadline:
            time.sleep(0.01)
        watch.asking.join(timeout=30)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and lines[1].startswith("Kafka at localhost:9092 answers again, after "), lines
    assert len(asked) == 3  # asked until the first answer, then no more
    assert all(b - a >= 0.04 for a, b in zip(asked, asked[1:]))  # not in a busy loop


def test_a_lost_peer_process_is_one_line_saying_what_to_do(capsys):
    PanicException = type("PanicException", (BaseException,), {})
    hook = peer_lost_hook("sold_out", ["bytewax.run", "dataflows.sold_out", "-i", "0", "-a", "h:2101;h:2102"])
    hook(PanicException, PanicException("Send thread panic: Any { .. }"), None)
    assert capsys.readouterr().err == (
        "utopia sold_out: process 1 of 2 lost (this is process 0); restart all 2 (with -r to resume from the last "
        "snapshot)\n"
    )
    other = []
    sys_hook, sys.excepthook = sys.excepthook, lambda *args: other.append(args)
    try:
        peer_lost_hook("sold_out", [])(ValueError, ValueError("x"), None)
    finally:
        sys.excepthook = sys_hook
    assert other and other[0][0] is ValueError  # anything else goes to the previous hook
