"""A second local broker for the tests, secured as Confluent Cloud and the workshop's cluster are.

SASL_SSL with PLAIN on a listener whose certificate is signed by a CA the test makes (so it is
in no system trust store), ACLs enforced (StandardAuthorizer), topics never created on first
use, and the workshop's rules for the user `alice`: consumer groups and output topics only under
`kafka-workshop-`, input topics (`data-demo-`) read-only. The user `bob` may read the inputs (topics
and groups) and see the output topics, but write none; `carol` has no ACL but what a test grants. The broker
`admin` is a super user.
It runs from the jars `make kafka-up` fetched, on free ports of localhost, in a temporary folder.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import time
import uuid
from pathlib import Path

from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)

ROOT = Path(__file__).resolve().parent.parent
LIBS = Path(os.environ.get("KAFKA_HOME_DIR", ROOT / ".kafka")) / "libs"
PASSWORDS = {"admin": "admin-secret", "alice": "alice-secret", "bob": "bob-secret", "carol": "carol-secret"}
_QUIET = logging.getLogger("tests.secure_broker.clients")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def allow(user: str, kind: ResourceType, prefix: str, operation: AclOperation) -> AclBinding:
    """An ACL letting `user` do `operation` on the resources of `kind` whose names start with `prefix`."""
    return AclBinding(
        kind, prefix, ResourcePatternType.PREFIXED, f"User:{user}", "*", operation, AclPermissionType.ALLOW
    )


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certificates(folder: Path) -> Path:
    """A CA, and a certificate for localhost signed by it; the broker's key and chain in one PEM file."""
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=utopia-test-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        cwd=folder,
    )
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "broker.key",
        "-out",
        "broker.csr",
        cwd=folder,
    )
    (folder / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    _openssl(
        "x509",
        "-req",
        "-in",
        "broker.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "broker.crt",
        cwd=folder,
    )
    _openssl("pkcs8", "-topk8", "-nocrypt", "-in", "broker.key", "-out", "broker.pk8", cwd=folder)  # Kafka's PEM keys
    (folder / "broker.pem").write_text((folder / "broker.pk8").read_text() + (folder / "broker.crt").read_text())
    return folder / "ca.pem"


class SecureBroker:
    def __init__(self, folder: Path):
        self.folder = folder
        self.port, self.controller = free_port(), free_port()
        self.ca = make_certificates(folder)
        users = " ".join(f'user_{name}="{password}"' for name, password in PASSWORDS.items())
        properties = folder / "server.properties"
        properties.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    "controller.listener.names=CONTROLLER",
                    f"listeners=SASL_SSL://localhost:{self.port},CONTROLLER://localhost:{self.controller}",
                    f"advertised.listeners=SASL_SSL://localhost:{self.port}",
                    f"controller.quorum.bootstrap.servers=localhost:{self.controller}",
                    "listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT",
                    "inter.broker.listener.name=SASL_SSL",
                    "sasl.enabled.mechanisms=PLAIN",
                    "sasl.mechanism.inter.broker.protocol=PLAIN",
                    "listener.name.sasl_ssl.plain.sasl.jaas.config="
                    "org.apache.kafka.common.security.plain.PlainLoginModule "
                    f'required username="admin" password="{PASSWORDS["admin"]}" {users};',
                    "ssl.keystore.type=PEM",
                    f"ssl.keystore.location={folder / 'broker.pem'}",
                    "ssl.truststore.type=PEM",
                    f"ssl.truststore.location={self.ca}",
                    "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                    "super.users=User:admin;User:ANONYMOUS",  # ANONYMOUS: the controller's own plaintext listener
                    "allow.everyone.if.no.acl.found=false",
                    "auto.create.topics.enable=false",
                    f"log.dirs={folder / 'data'}",
                    "num.partitions=3",
                    "offsets.topic.replication.factor=1",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                ]
            )
            + "\n"
        )
        java = [
            "java",
            "-Xms128m",
            "-Xmx512m",
            f"-Dlog4j2.configurationFile={ROOT / 'kafka' / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={folder / 'logs'}",
            "-cp",
            f"{LIBS}/*",
        ]
        cluster_id = uuid.uuid4().hex[:22]
        subprocess.run(
            [
                *java,
                "kafka.tools.StorageTool",
                "format",
                "--standalone",
                f"--cluster-id={cluster_id}",
                "-c",
                str(properties),
            ],
            check=True,
            capture_output=True,
        )
        self.log = (folder / "stdout.log").open("w")
        self.command = [*java, "kafka.Kafka", str(properties)]
        self.start()
        self._grant_the_workshop_rules()

    def start(self) -> None:
        """Start the broker (again: its data and ACLs are kept) and wait until it answers."""
        self.process = subprocess.Popen(self.command, stdout=self.log, stderr=subprocess.STDOUT)
        self._wait_until_up()

    def env(self, user: str = "alice", password: str | None = None, ca: bool = True) -> dict[str, str]:
        """The project's settings for `user` against this broker."""
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": f"localhost:{self.port}",
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_MECHANISM": "PLAIN",
            "KAFKA_SASL_USERNAME": user,
            "KAFKA_SASL_PASSWORD": PASSWORDS[user] if password is None else password,
        }
        return env | ({"KAFKA_SSL_CA_LOCATION": str(self.ca)} if ca else {})

    def admin_config(self) -> dict:
        """The super user's client settings; its clients' own logs are dropped (they would fill the outage test)."""
        return {
            "bootstrap.servers": f"localhost:{self.port}",
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": "PLAIN",
            "sasl.username": "admin",
            "sasl.password": PASSWORDS["admin"],
            "ssl.ca.location": str(self.ca),
            "logger": _QUIET,
        }

    def _wait_until_up(self) -> None:
        client = AdminClient(self.admin_config())
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the secured broker died: see {self.folder / 'stdout.log'}")
            try:
                client.list_topics(timeout=1)
                return
            except Exception:
                time.sleep(0.5)
        raise RuntimeError(f"the secured broker did not answer within 90 s: see {self.folder / 'stdout.log'}")

    def grant(self, *bindings: AclBinding) -> None:
        client = AdminClient(self.admin_config())  # must outlive its futures
        for future in client.create_acls(list(bindings)).values():
            future.result(timeout=30)

    def revoke(self, *bindings: AclBinding) -> None:
        client = AdminClient(self.admin_config())
        filters = [
            AclBindingFilter(
                b.restype, b.name, b.resource_pattern_type, b.principal, b.host, b.operation, b.permission_type
            )
            for b in bindings
        ]
        for future in client.delete_acls(filters).values():
            future.result(timeout=30)

    def _grant_the_workshop_rules(self) -> None:
        self.grant(
            allow("alice", ResourceType.TOPIC, "kafka-workshop-", AclOperation.ALL),
            allow("alice", ResourceType.GROUP, "kafka-workshop-", AclOperation.ALL),
            *(
                allow(user, ResourceType.TOPIC, "data-demo-", operation)
                for user in ("alice", "bob")
                for operation in (AclOperation.READ, AclOperation.DESCRIBE)
            ),
            allow("bob", ResourceType.GROUP, "kafka-workshop-", AclOperation.READ),
            allow("bob", ResourceType.TOPIC, "kafka-workshop-", AclOperation.DESCRIBE),
        )

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def close(self) -> None:
        self.stop()
        self.log.close()
