"""`utopia watch` on the real broker: a dataflow's outputs as the dashboard shows them from Kafka."""

import pytest

from tests.kafka_support import Cluster
from tests.test_watch import frame
from utopia.models import Customer, Event, Stream, Ticket
from utopia.tools.watch import KafkaOutputs

pytestmark = pytest.mark.kafka


def test_a_fresh_watch_shows_the_totals_and_dead_letters_already_written():
    cluster = Cluster()
    cluster.produce("customers", [Customer("c1"), Customer("c2")])
    cluster.produce("events", [Event("e1", "a1", "v1", 10, "2020-01-01")])
    cluster.produce("streams", [Stream(f"s{i}", "c1", "a1") for i in range(3)])
    cluster.produce("tickets", [Ticket("t1", "c2", "e1")])
    cluster.produce("tickets", [b"{not json"])
    ran = cluster.run("global_totals")
    assert ran.returncode == 0, ran.stderr
    text = frame(KafkaOutputs(cluster.settings))
    assert "2 customers   3 streams   1 events (1 taken place)   1 tickets" in text, text
    assert "1 dead letters (global_totals 1)" in text, text
    assert f"outputs {cluster.env['UTOPIA_OUTPUT_PREFIX']}* on localhost:9092" in text
