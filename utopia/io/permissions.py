"""What the principal may do on a dataflow's topics: asked before the run starts, and a refusal named in one line.

Denied a write on its output topics, a dataflow ended with an 88-line Rust panic (or 167 lines and an
abort) whose only cause, `Cluster authorization failed: Failed to acquire idempotence PID`, named
neither a topic nor a permission. Kafka tells a client which operations its principal may perform
on each topic it describes (KIP-430): unlike listing the ACLs (DESCRIBE_ACLS, which shared clusters
rarely grant), that needs no right of its own, so READ on every input and WRITE on every output are
checked that way before the run starts, and the consumer group by describing it. What only a refusal
shows (an ACL removed while the dataflow runs, IDEMPOTENT_WRITE on a cluster older than Kafka 3.0) is
named when it comes (`write_refused`).
"""

from __future__ import annotations

import logging

from confluent_kafka import KafkaError, KafkaException, TopicCollection
from confluent_kafka.admin import AclOperation, AdminClient

from utopia.config import ConfigError, Settings
from utopia.io.kafka_source import CONNECT_TIMEOUT_S

log = logging.getLogger("utopia")
_quiet = logging.getLogger("utopia.kafka.permissions")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False


def check_access(settings: Settings, group: str, inputs: list[str], outputs: list[str]) -> None:
    """READ on every input topic, WRITE on every output topic and DESCRIBE on the consumer group, or a
    ConfigError naming what is missing.

    The consumers only look up their group's coordinator (DESCRIBE): they read assigned partitions and
    commit nothing. Topics that do not exist are left to the checks that name them (or create them),
    and so is every topic when the broker does not tell what the principal may do (before Kafka 2.3):
    then the first refusal names what is missing.
    """
    # Must outlive its futures. (The stubs allow no logger.)
    client = AdminClient(settings.kafka_config() | {"logger": _quiet})  # type: ignore[arg-type]
    allowed = _operations(client, [*inputs, *outputs])
    refused = []
    if _group_refused(client, group):
        refused.append(_group_needs(settings, group))
    for role, topics, action, operation, prefix in (
        ("input", inputs, "read", AclOperation.READ, settings.topics.input_prefix),
        ("output", outputs, "write to", AclOperation.WRITE, settings.topics.output_prefix),
    ):
        acl = f"(a topic ACL on each name, or on the prefix {prefix})"
        hidden = [topic for topic in topics if topic in allowed and allowed[topic] is None]
        if hidden:
            refused.append(
                f"describe {role} topic(s) {', '.join(hidden)} (nor learn whether they exist): it needs "
                f"DESCRIBE and {operation.name} on them {acl}"
            )
        lacking = [topic for topic in topics if (may := allowed.get(topic)) is not None and operation not in may]
        if lacking:
            refused.append(f"{action} {role} topic(s) {', '.join(lacking)}: it needs {operation.name} on them {acl}")
    if refused:
        raise ConfigError(f"{_principal(settings)} may not {'; may not '.join(refused)}")


def check_group(settings: Settings, group: str) -> None:
    """DESCRIBE on `group`, or a ConfigError naming it. A consumer that only reads assigned partitions still looks up
    its group's coordinator (confluent-kafka wants a group.id): `utopia tail` and `utopia watch` too."""
    # Must outlive its futures. (The stubs allow no logger.)
    client = AdminClient(settings.kafka_config() | {"logger": _quiet})  # type: ignore[arg-type]
    if _group_refused(client, group):
        raise ConfigError(f"{_principal(settings)} may not {_group_needs(settings, group)}")


def _group_needs(settings: Settings, group: str) -> str:
    return (
        f"describe consumer group {group}: it needs READ or DESCRIBE on it (a group ACL on that name, or on the "
        f"prefix {settings.topics.output_prefix})"
    )


def write_refused(settings: Settings, error: KafkaError, topic: str) -> str:
    """What a write Kafka refused needs, to end the line that reports it ('' if not refused for a permission)."""
    if error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
        return f": {_principal(settings)} needs WRITE on {topic}"
    if error.code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED:  # an idempotent producer's id is refused
        return (
            f": {_principal(settings)} needs WRITE on the output topics (Kafka 3.0 and later), or "
            "IDEMPOTENT_WRITE on the cluster (before 3.0)"
        )
    return ""


def read_refused(settings: Settings, topic: str) -> str:
    """What a read Kafka refused while running needs, to end the line that reports it."""
    return f": {_principal(settings)} needs READ on {topic}"


def _principal(settings: Settings) -> str:
    """Whom Kafka refused, as far as the settings tell (a TLS client is named by its certificate)."""
    if settings.security_protocol.startswith("SASL"):
        return f"the principal (KAFKA_SASL_USERNAME={settings.sasl_username!r})"
    return "the principal"


def _group_refused(client: AdminClient, group: str) -> bool:
    """Whether Kafka refuses to describe the group to the principal (any other answer is not a refusal)."""
    future = client.describe_consumer_groups([group], request_timeout=CONNECT_TIMEOUT_S)[group]
    try:
        future.result(timeout=2 * CONNECT_TIMEOUT_S)
        return False
    except KafkaException as error:
        return error.args[0].code() == KafkaError.GROUP_AUTHORIZATION_FAILED
    except TimeoutError:  # no answer in time is no refusal
        return False


def _operations(client: AdminClient, topics: list[str]) -> dict[str, set[AclOperation] | None]:
    """What the principal may do on each topic, None where it may not even describe it.

    Kafka answers a topic the principal may not describe as refused whether it exists or not. A topic
    that does not exist, or whose operations the broker does not tell, is left out.
    """
    futures = client.describe_topics(
        TopicCollection(list(dict.fromkeys(topics))),
        request_timeout=CONNECT_TIMEOUT_S,
        include_authorized_operations=True,
    )
    allowed: dict[str, set[AclOperation] | None] = {}
    for topic, future in futures.items():
        try:
            operations = future.result(timeout=2 * CONNECT_TIMEOUT_S).authorized_operations
        except KafkaException as error:
            if error.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
                allowed[topic] = None
            elif error.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                log.info("what the principal may do on %s is not known (%s): not checked", topic, error.args[0].str())
            continue
        except TimeoutError:
            log.info("what the principal may do on %s is not known (no answer in time): not checked", topic)
            continue
        if operations is not None:
            allowed[topic] = set(operations)
    return allowed
