"""Whether the cluster in use is the local broker (`kafka/broker.sh`), and on which port: decided here alone.

The clients' bootstrap servers are `KAFKA_BOOTSTRAP_SERVERS`, or `localhost:$KAFKA_PORT` when it is
unset (`KAFKA_PORT` defaults to 9092). The local broker is the cluster in use when the bootstrap
servers are localhost on one port, and it then listens on that port; any other cluster (Confluent
Cloud, your own) needs no local broker, nor the JDK and Maven that start one. `make` used to start
the local broker whatever the clients were set to use, and `KAFKA_PORT` moved the broker and not
the clients.

Standard library only: `broker.sh` runs `python3 -m utopia.local_broker` before the project is
installed, and it prints the local broker's port, or nothing when another cluster is in use.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

LOCAL_HOSTS = ("localhost", "127.0.0.1")
DEFAULT_PORT = 9092


def bootstrap_servers(env: Mapping[str, str]) -> str:
    """The servers the clients ask first; ValueError (one line naming the variables) when they contradict."""
    port = _port(env)
    servers = env.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if not servers:
        return f"localhost:{port}"
    local = local_port(servers)
    if "KAFKA_PORT" in env and local is not None and local != port:
        raise ValueError(
            f"KAFKA_PORT={port} and KAFKA_BOOTSTRAP_SERVERS={servers!r} name different ports of the "
            "local broker: set only one of them"
        )
    return servers


def local_port(servers: str) -> int | None:
    """The port of the local broker when `servers` name only it (localhost or 127.0.0.1, one port); else None."""
    hosts_ports = {server.strip().rpartition(":")[::2] for server in servers.split(",")}
    ports = {port for _, port in hosts_ports}
    if len(ports) != 1 or not all(host in LOCAL_HOSTS for host, _ in hosts_ports):
        return None
    port = ports.pop()
    return int(port) if port.isdigit() else None


def _port(env: Mapping[str, str]) -> int:
    text = env.get("KAFKA_PORT", str(DEFAULT_PORT)).strip()
    # The local broker's controller listens on the next port.
    if not text.isdigit() or not 0 < int(text) < 65535:
        raise ValueError(
            f"KAFKA_PORT={text!r} is not a port number from 1 to 65534 (the broker's controller takes the next one)"
        )
    return int(text)


def main() -> None:
    """Print the local broker's port, or nothing when the cluster in use is another; a bad setting: one line, rc 2."""
    try:
        port = local_port(bootstrap_servers(os.environ))
    except ValueError as error:
        print(error, file=sys.stderr)
        sys.exit(2)
    if port is not None:
        print(port)


if __name__ == "__main__":
    main()
