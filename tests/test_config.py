"""Settings from the environment: defaults, Confluent Cloud, and one-line errors that hide secrets."""

import pytest

from utopia.config import VARIABLES, ConfigError, Settings


def test_defaults_match_the_spec():
    s = Settings.from_env({})
    assert (s.bootstrap_servers, s.security_protocol, s.start_offset, s.tail) == (
        "localhost:9092",
        "PLAINTEXT",
        "earliest",
        True,
    )
    assert (s.topics.input("streams"), s.topics.output("event-alerts")) == (
        "data-demo-streams",
        "kafka-workshop-event-alerts",
    )
    assert s.kafka_config() == {"bootstrap.servers": "localhost:9092", "security.protocol": "PLAINTEXT"}


def test_confluent_cloud_sasl_ssl_plain():
    s = Settings.from_env(
        {
            "KAFKA_BOOTSTRAP_SERVERS": "pkc-123.us-east-1.aws.confluent.cloud:9092",
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_USERNAME": "KEY",
            "KAFKA_SASL_PASSWORD": "s3cret",
        }
    )
    assert s.kafka_config() == {
        "bootstrap.servers": "pkc-123.us-east-1.aws.confluent.cloud:9092",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "PLAIN",
        "sasl.username": "KEY",
        "sasl.password": "s3cret",
    }
    assert "s3cret" not in repr(s)


def test_shared_cluster_names_and_ids_start_with_the_output_prefix():
    s = Settings.from_env({"UTOPIA_OUTPUT_SUFFIX": "-team-bigfoot"})
    assert s.topics.output("event-alerts") == "kafka-workshop-event-alerts-team-bigfoot"
    assert s.topics.client_id("sold_out").startswith("kafka-workshop-")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL='TLS' is not one of"),
        ({"KAFKA_BOOTSTRAP_SERVERS": "localhost"}, "KAFKA_BOOTSTRAP_SERVERS='localhost' must be host:port"),
        ({"UTOPIA_START_OFFSET": "middle"}, "UTOPIA_START_OFFSET='middle' is not one of earliest, latest"),
        ({"UTOPIA_TAIL": "maybe"}, "UTOPIA_TAIL='maybe' is not true or false"),
        ({"UTOPIA_CREATE_TOPICS": "yes"}, "UTOPIA_CREATE_TOPICS='yes' is not true or false"),
        ({"KAFKA_SSL_CA_LOCATION": "/nowhere/ca.pem"}, "KAFKA_SSL_CA_LOCATION='/nowhere/ca.pem' is not a file"),
        ({"UTOPIA_BATCH_SIZE": "0"}, "UTOPIA_BATCH_SIZE='0' is not a positive whole number"),
        ({"UTOPIA_SHARDS": "0"}, "UTOPIA_SHARDS='0' is not a positive whole number"),
        ({"UTOPIA_ORDER": "time"}, "UTOPIA_ORDER='time' is not one of partition, global"),
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_PASSWORD": "s3cret"}, "needs KAFKA_SASL_USERNAME"),
    ],
)
def test_bad_values_give_one_line_naming_the_variable(env, message):
    with pytest.raises(ConfigError) as error:
        Settings.from_env(env)
    assert message in str(error.value)
    assert "\n" not in str(error.value) and "s3cret" not in str(error.value)


def test_every_variable_is_in_the_readme_table():
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    for name, _, _ in VARIABLES:
        assert f"| `{name}` |" in readme, name


def test_a_ca_file_and_any_other_librdkafka_setting_reach_every_client(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    s = Settings.from_env(
        {
            "KAFKA_SSL_CA_LOCATION": str(ca),
            "KAFKA_CONFIG_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM": "none",
            "KAFKA_CONFIG_SASL_OAUTHBEARER_CLIENT_SECRET": "t0ken",
            "KAFKA_CONFIG_": "ignored",
        }
    )
    assert s.kafka_config() == {
        "bootstrap.servers": "localhost:9092",
        "security.protocol": "PLAINTEXT",
        "ssl.ca.location": str(ca),
        "ssl.endpoint.identification.algorithm": "none",
        "sasl.oauthbearer.client.secret": "t0ken",
    }
    assert "t0ken" not in repr(s)  # a client setting may be a secret


def test_a_client_setting_wins_over_the_projects_own():
    s = Settings.from_env({"KAFKA_CONFIG_BOOTSTRAP_SERVERS": "other:9093"})
    assert s.kafka_config()["bootstrap.servers"] == "other:9093"
