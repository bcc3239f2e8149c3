"""Settings from environment variables (the README's configuration table), validated up front.

Every problem becomes a `ConfigError` whose text is one line naming the variable; the password's
value never appears in it, nor in `Settings`' repr.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta, tzinfo

from utopia.dates import zone_named
from utopia.local_broker import bootstrap_servers
from utopia.models import INPUT_RECORDS


class ConfigError(Exception):
    """A setting is missing or invalid; the message is one line meant for the user."""


SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
GUARANTEES = ("at-least-once", "exactly-once")
ORDERS = ("partition", "global")
START_OFFSETS = ("earliest", "latest")

# (variable, default, meaning) -- the README's configuration table is checked against this list.
VARIABLES: tuple[tuple[str, str, str], ...] = (
    (
        "KAFKA_BOOTSTRAP_SERVERS",
        "localhost:9092",
        "Kafka bootstrap servers, comma separated (unset: localhost:$KAFKA_PORT)",
    ),
    ("KAFKA_PORT", "9092", "the local broker's port, and the clients' while KAFKA_BOOTSTRAP_SERVERS is unset"),
    ("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT", "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL (Confluent Cloud)"),
    ("KAFKA_SASL_MECHANISM", "PLAIN", "PLAIN (Confluent Cloud), SCRAM-SHA-256 or SCRAM-SHA-512"),
    ("KAFKA_SASL_USERNAME", "", "SASL username (Confluent Cloud: the API key)"),
    ("KAFKA_SASL_PASSWORD", "", "SASL password (Confluent Cloud: the API secret); never printed"),
    (
        "KAFKA_SSL_CA_LOCATION",
        "",
        "a CA certificate file (PEM) to trust, for a cluster whose CA is not in the system's store",
    ),
    ("UTOPIA_INPUT_PREFIX", "data-demo-", "prefix of the input topics"),
    ("UTOPIA_OUTPUT_PREFIX", "kafka-workshop-", "prefix of the output topics, consumer group and client ids"),
    ("UTOPIA_OUTPUT_SUFFIX", "", "suffix of the output topics, e.g. `-team-bigfoot` on a shared cluster"),
    ("UTOPIA_START_OFFSET", "earliest", "where a dataflow starts reading: earliest or latest"),
    ("UTOPIA_TAIL", "true", "true: keep waiting for new input; false: stop at the end of each partition"),
    ("UTOPIA_BATCH_SIZE", "1000", "records a worker takes at a time, from all the partitions it reads"),
    ("UTOPIA_MAX_IDLE_MS", "1000", "how long a partition fetched to its end holds back the others"),
    (
        "UTOPIA_CHANGELOG_FLUSH_MS",
        "1000",
        "how long a changelog update may wait for a newer one; 0: every change is written",
    ),
    ("UTOPIA_EVENTDATE_ZONE", "UTC", "IANA zone of event dates written without one (the producer's local time)"),
    (
        "UTOPIA_CREATE_TOPICS",
        "false",
        "true: a dataflow creates its missing output topics; false: it says which and stops",
    ),
    ("UTOPIA_GUARANTEE", "at-least-once", "at-least-once, or exactly-once (Kafka transactions; needs -r)"),
    (
        "UTOPIA_ORDER",
        "partition",
        "partition: each worker applies its own partitions in timestamp order; global: one order for all workers",
    ),
    ("UTOPIA_SHARDS", "24", "groups of keys a keyed step spreads over workers: at most this many workers share a step"),
)
CLIENT_PREFIX = "KAFKA_CONFIG_"
"""`KAFKA_CONFIG_<NAME>=value` sets any other librdkafka setting.

`KAFKA_CONFIG_FETCH_WAIT_MAX_MS` is `fetch.wait.max.ms`.
"""
_DEFAULTS = {name: default for name, default, _ in VARIABLES}


@dataclass(frozen=True)
class Topics:
    """Topic naming: `<input prefix><name>` for inputs, `<prefix><name><suffix>` for outputs."""

    input_prefix: str = "data-demo-"
    output_prefix: str = "kafka-workshop-"
    output_suffix: str = ""

    def input(self, name: str) -> str:
        return f"{self.input_prefix}{name}"

    def output(self, name: str) -> str:
        return f"{self.output_prefix}{name}{self.output_suffix}"

    def client_id(self, dataflow: str) -> str:
        """Consumer group and client ids start with the output prefix (shared clusters ACL by it)."""
        return f"{self.output_prefix}{dataflow}{self.output_suffix}"

    def all_inputs(self) -> list[str]:
        return [self.input(name) for name in INPUT_RECORDS]


@dataclass(frozen=True)
class Settings:
    bootstrap_servers: str = "localhost:9092"
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "PLAIN"
    sasl_username: str = ""
    sasl_password: str = field(default="", repr=False)
    ssl_ca_location: str = ""
    client_config: dict[str, str] = field(default_factory=dict, repr=False)  # values may be secrets
    topics: Topics = field(default_factory=Topics)
    start_offset: str = "earliest"
    tail: bool = True
    batch_size: int = 1000
    max_idle_ms: int = 1000
    changelog_flush_ms: int = 1000
    eventdate_zone: str = "UTC"
    create_topics: bool = False
    guarantee: str = "at-least-once"
    order: str = "partition"
    """How records of partitions that different workers read are ordered (docs/outputs.md#ordering)."""

    @property
    def exactly_once(self) -> bool:
        return self.guarantee == "exactly-once"

    @property
    def changelog(self) -> timedelta:
        return timedelta(milliseconds=self.changelog_flush_ms)

    @property
    def zone(self) -> tzinfo:
        """Where zone-less event dates were written (data-demo writes the producer JVM's local time)."""
        return zone_named(self.eventdate_zone)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def get(name: str) -> str:
            return env.get(name, _DEFAULTS[name]).strip()

        def flag(name: str) -> bool:
            value = get(name).lower()
            if value not in ("true", "false"):
                raise ConfigError(f"{name}={get(name)!r} is not true or false")
            return value == "true"

        def choice(name: str, allowed: tuple[str, ...], normalize=str.upper) -> str:
            value = normalize(get(name))
            if value not in allowed:
                raise ConfigError(f"{name}={get(name)!r} is not one of {', '.join(allowed)}")
            return value

        try:
            servers = bootstrap_servers(env)
        except ValueError as error:
            raise ConfigError(str(error)) from None
        if any(":" not in s for s in servers.split(",")):
            raise ConfigError(f"KAFKA_BOOTSTRAP_SERVERS={servers!r} must be host:port[,host:port...]")
        protocol = choice("KAFKA_SECURITY_PROTOCOL", SECURITY_PROTOCOLS)
        mechanism = choice("KAFKA_SASL_MECHANISM", SASL_MECHANISMS)
        username, password = get("KAFKA_SASL_USERNAME"), env.get("KAFKA_SASL_PASSWORD", "")
        if protocol.startswith("SASL") and not (username and password):
            raise ConfigError(f"KAFKA_SECURITY_PROTOCOL={protocol} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD")
        ca = get("KAFKA_SSL_CA_LOCATION")
        if ca and not os.path.isfile(ca):
            raise ConfigError(f"KAFKA_SSL_CA_LOCATION={ca!r} is not a file")
        client = {
            name[len(CLIENT_PREFIX) :].lower().replace("_", "."): value.strip()
            for name, value in env.items()
            if name.startswith(CLIENT_PREFIX) and len(name) > len(CLIENT_PREFIX)
        }
        tail, create = flag("UTOPIA_TAIL"), flag("UTOPIA_CREATE_TOPICS")
        batch = get("UTOPIA_BATCH_SIZE")
        if not batch.isdigit() or int(batch) < 1:
            raise ConfigError(f"UTOPIA_BATCH_SIZE={batch!r} is not a positive whole number")
        idle = get("UTOPIA_MAX_IDLE_MS")
        if not idle.isdigit():
            raise ConfigError(f"UTOPIA_MAX_IDLE_MS={idle!r} is not a whole number of milliseconds")
        flush = get("UTOPIA_CHANGELOG_FLUSH_MS")
        if not flush.isdigit():
            raise ConfigError(f"UTOPIA_CHANGELOG_FLUSH_MS={flush!r} is not a whole number of milliseconds")
        shards = get("UTOPIA_SHARDS")
        if not shards.isdigit() or int(shards) < 1:
            raise ConfigError(f"UTOPIA_SHARDS={shards!r} is not a positive whole number")
        zone = get("UTOPIA_EVENTDATE_ZONE")
        try:
            zone_named(zone)
        except ValueError as error:
            raise ConfigError(f"UTOPIA_EVENTDATE_ZONE={error}") from None
        return cls(
            bootstrap_servers=servers,
            security_protocol=protocol,
            sasl_mechanism=mechanism,
            sasl_username=username,
            sasl_password=password,
            ssl_ca_location=ca,
            client_config=client,
            topics=Topics(get("UTOPIA_INPUT_PREFIX"), get("UTOPIA_OUTPUT_PREFIX"), get("UTOPIA_OUTPUT_SUFFIX")),
            start_offset=choice("UTOPIA_START_OFFSET", START_OFFSETS, normalize=str.lower),
            tail=tail,
            batch_size=int(batch),
            max_idle_ms=int(idle),
            changelog_flush_ms=int(flush),
            eventdate_zone=zone,
            create_topics=create,
            guarantee=choice("UTOPIA_GUARANTEE", GUARANTEES, normalize=str.lower),
            order=choice("UTOPIA_ORDER", ORDERS, normalize=str.lower),
        )

    def kafka_config(self) -> dict[str, str]:
        """librdkafka settings shared by consumers, producers and the admin client.

        `KAFKA_CONFIG_*` settings come last: what a user sets there wins, as client properties do
        in Kafka Streams.
        """
        config = {"bootstrap.servers": self.bootstrap_servers, "security.protocol": self.security_protocol}
        if self.security_protocol.startswith("SASL"):
            config |= {
                "sasl.mechanism": self.sasl_mechanism,
                "sasl.username": self.sasl_username,
                "sasl.password": self.sasl_password,
            }
        if self.ssl_ca_location:
            config["ssl.ca.location"] = self.ssl_ca_location
        return config | self.client_config
