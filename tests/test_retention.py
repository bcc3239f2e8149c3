"""A data set the broker would soon delete for its age is refused; records deleted before they were read are told."""

import logging

import pytest

from utopia.io.retention import DAY_MS, DeletedRecords, kept_for, too_old_to_load

NOW = 1_796_637_000_000  # 2026-12-07T09:50:00Z
WEEK = {"retention.ms": "604800000", "cleanup.policy": "delete"}


@pytest.mark.parametrize(
    ("retention_ms", "words"),
    [
        (604_800_000, "7 days"),
        (129_600_000, "1.5 days"),
        (3_600_000, "1 hours"),
        (90_000, "1.5 minutes"),
        (-1, "for ever"),
    ],
)
def test_retention_in_words(retention_ms, words):
    assert kept_for(retention_ms) == words


def test_a_data_set_older_than_a_topics_retention_is_refused_naming_the_topic_and_the_fix():
    start = NOW - 36 * DAY_MS - 35_400_000  # 2026-11-01T00:00:00Z
    reason = too_old_to_load({"data-demo-artists": {"retention.ms": "-1"}, "data-demo-streams": WEEK}, start, NOW)
    assert reason == (
        "data-demo-streams keeps records 7 days (retention.ms=604800000) and this data set starts "
        "2026-11-01T00:00:00Z, 36.4 days ago: the broker would soon delete it. Start it later "
        "(--start yesterday) or keep the topics' records longer (retention.ms=-1, as `utopia topics "
        "create` makes input topics)"
    )


@pytest.mark.parametrize(("age_ms", "refused"), [(DAY_MS, False), (6 * DAY_MS - 1, False), (6 * DAY_MS + 1, True)])
def test_a_data_set_is_loaded_only_if_the_broker_keeps_it_a_day_at_least(age_ms, refused):
    assert (too_old_to_load({"data-demo-streams": WEEK}, NOW - age_ms, NOW) is not None) == refused


@pytest.mark.parametrize(
    "config",
    [
        {"retention.ms": "-1", "cleanup.policy": "delete"},
        {"retention.ms": "604800000", "cleanup.policy": "compact"},  # compacted only: nothing is deleted for its age
        {},  # not readable: the loader's note, not a refusal
    ],
)
def test_topics_that_keep_records_for_ever_or_are_not_known_refuse_nothing(config):
    assert too_old_to_load({"data-demo-streams": config}, NOW - 400 * DAY_MS, NOW) is None


def told(caplog, configs: dict, topic: str, *where: tuple[int, int, int, int]) -> list[str]:
    """The lines for these losses (partition, wanted, first, end) of `topic`: a topic of its own for each test, since
    repeats of a topic's line are held back for 30 s."""
    with caplog.at_level(logging.WARNING, logger="utopia.retention"):
        report = DeletedRecords(lambda topic: configs)
        for loss in where:
            report(topic, *loss)
    return [record.getMessage() for record in caplog.records]


def test_records_deleted_before_they_were_read_are_told_with_the_topics_retention(caplog):
    assert told(caplog, WEEK, "data-demo-streams", (2, 0, 1234, 1300)) == [
        "data-demo-streams: the broker deleted 1,234 record(s) of partition 2 (offsets 0 to 1233) before this "
        "dataflow read them (it keeps records 7 days, retention.ms=604800000; to keep loaded data, give it recent "
        "timestamps (utopia generate --start yesterday) or keep the topics' records longer (retention.ms=-1, as "
        "`utopia topics create` makes input topics))"
    ]


def test_records_deleted_from_a_topic_kept_for_ever_are_told_without_the_advice_about_age(caplog):
    [line] = told(caplog, {"retention.ms": "-1"}, "data-demo-emails", (0, 5, 9, 9))
    assert line.endswith(
        "(offsets 5 to 8) before this dataflow read them (the topic keeps records for ever by age: "
        "its retention.bytes or a delete-records request)"
    )


def test_a_resume_past_the_end_of_a_partition_says_it_starts_again_from_its_first_record(caplog):
    assert told(caplog, WEEK, "data-demo-events", (1, 500, 0, 20)) == [
        "data-demo-events partition 1 ends at offset 20, before offset 500 this dataflow resumes at: the topic was "
        "emptied or made anew; reading it from offset 0"
    ]


def test_a_topic_whose_partitions_all_lost_records_is_told_in_one_line(caplog):
    lines = told(caplog, WEEK, "data-demo-tickets", (0, 0, 40, 40), (1, 0, 35, 35), (2, 0, 38, 38))
    assert len(lines) == 1 and lines[0].startswith("data-demo-tickets: the broker deleted 40 record(s) of partition 0")
