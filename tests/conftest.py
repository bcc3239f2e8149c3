import signal

import msgspec
import pytest
from hypothesis import HealthCheck, settings

from utopia.io.runtime import plan_workers

# Property tests run whole dataflows: no per-example deadline, and no failing a run because a loaded
# CI machine made example generation slow (a health check, not a finding about the code).
settings.register_profile(
    "utopia",
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.load_profile("utopia")

# Tests that stop a child with Ctrl-C (SIGINT) need the child to hear it. A shell without job control starts a
# background command (`make test &`, a CI script) with SIGINT ignored, and an ignored signal stays ignored
# across exec: every child would then ignore Ctrl-C too. A handled one is reset to the default in the child.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def plain(value):
    """An output value as plain JSON data, for comparing with expectations and references."""
    return msgspec.json.decode(msgspec.json.encode(value))


@pytest.fixture(params=[1, 3], ids=["1-worker", "3-workers"])
def workers(request):
    """1 or 3 workers; keyed steps built meanwhile send bundles per worker, as across processes (utopia.steps)."""
    plan_workers(request.param)
    yield request.param
    plan_workers(1)


def pytest_sessionfinish(session, exitstatus):
    """Delete the topics the real-broker tests made (see tests/kafka_support.Cluster)."""
    from tests.kafka_support import Cluster
    from utopia.io.topics import delete

    for cluster in Cluster.made:
        topics = cluster.topics()
        if topics:
            delete(cluster.settings, topics)
