#!/usr/bin/env bash
# The local Apache Kafka broker (KRaft, no Docker): broker.sh up | down | clean | status
# Maven fetches the official jars once into $KAFKA_HOME_DIR/libs; data and logs live beside them.
# `up` starts it only when it is the cluster in use (KAFKA_BOOTSTRAP_SERVERS, KAFKA_PORT), on the clients' port.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
home="${KAFKA_HOME_DIR:-$here/../.kafka}"
libs="$home/libs" data="$home/data" logs="$home/logs" pidfile="$home/broker.pid"
version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")"
port="" controller_port=""

java_opts=(-Xms256m -Xmx1g "-Dlog4j2.configurationFile=$here/log4j2.properties" "-Dkafka.logs.dir=$logs")

# Whether the local broker is the cluster in use, and its port: utopia/local_broker.py decides, for the
# clients too (KAFKA_BOOTSTRAP_SERVERS, else localhost:$KAFKA_PORT). False for any other cluster.
in_use() {
  port="$(PYTHONPATH="$here/.." python3 -m utopia.local_broker)" || exit 2
  controller_port=$((port + 1))
  [[ -n "$port" ]]
}
setting() { sed -n "s/^$1=//p" "$here/server.properties"; }
running() { [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }
# server.log keeps every run's lines: only those written since this start count.
this_run_logged() { grep -q "$1" < <(tail -c "+$((log_from + 1))" "$logs/server.log" 2>/dev/null); }

fetch() {
  # The stamp names the version, so changing it in pom.xml fetches again.
  if [[ "$(cat "$libs/.version" 2>/dev/null)" == "$version" ]]; then return; fi
  echo "fetching Apache Kafka $version from Maven Central into $libs ..."
  local started=$SECONDS
  rm -rf "$libs"
  mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$libs"
  echo "$version" > "$libs/.version"
  echo "fetched $(ls "$libs" | wc -l) jars in $((SECONDS - started))s"
}

format() {
  [[ -f "$data/meta.properties" ]] && return
  mkdir -p "$data" "$logs"
  local cluster_id
  # `--cluster-id=ID`, not `-t ID`: a base64url id may start with "-", which argparse takes for a flag.
  cluster_id="$(python3 -c 'import base64, uuid; print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))')"
  # StorageTool reads the same settings the broker gets, so write them out once for it.
  local props="$home/storage.properties"
  { cat "$here/server.properties"
    echo "log.dirs=$data"
    echo "listeners=PLAINTEXT://localhost:$port,CONTROLLER://localhost:$controller_port"
    echo "controller.quorum.bootstrap.servers=localhost:$controller_port"
  } > "$props"
  java "${java_opts[@]}" -cp "$libs/*" kafka.tools.StorageTool format --standalone --cluster-id="$cluster_id" -c "$props" >/dev/null
}

up() {
  if ! in_use; then
    echo "KAFKA_BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP_SERVERS is not the local broker: none started"; return
  fi
  if running && port_open; then echo "Kafka $version already runs on localhost:$port"; return; fi
  if port_open; then echo "port $port is taken by another program: stop it or set KAFKA_PORT" >&2; exit 1; fi
  fetch
  format
  # A pid file left behind: the last broker did not stop cleanly (killed, or the machine restarted).
  local unclean=0; [[ -f "$pidfile" ]] && unclean=1
  local started=$SECONDS log_from; log_from=$(stat -c %s "$logs/server.log" 2>/dev/null || echo 0)
  # The controller keeps an unclean stop's registration for broker.session.timeout.ms, and the broker
  # retries registering for initial.broker.registration.timeout.ms (longer, server.properties): wait for both.
  local wait_s=$(( $(setting initial.broker.registration.timeout.ms) / 1000 + 30 )) told=0
  nohup setsid java "${java_opts[@]}" -cp "$libs/*" kafka.Kafka "$here/server.properties" \
    --override "log.dirs=$data" \
    --override "listeners=PLAINTEXT://localhost:$port,CONTROLLER://localhost:$controller_port" \
    --override "advertised.listeners=PLAINTEXT://localhost:$port,CONTROLLER://localhost:$controller_port" \
    --override "controller.quorum.bootstrap.servers=localhost:$controller_port" \
    > "$logs/stdout.log" 2>&1 < /dev/null &
  echo $! > "$pidfile"
  while (( SECONDS - started < wait_s )); do
    if ! running; then
      echo "Kafka died while starting; last lines of its log:" >&2
      tail -n 20 "$logs/server.log" "$logs/stdout.log" >&2 || true
      rm -f "$pidfile"; exit 1
    fi
    if port_open && this_run_logged "Kafka Server started"; then
      echo "Kafka $version up on localhost:$port in $((SECONDS - started))s"; return
    fi
    if (( !told )) && { (( unclean )) || this_run_logged DuplicateBrokerRegistration; }; then
      told=1
      echo "Kafka's last run did not stop cleanly: it registers once the controller lets go of that run's" \
           "registration, within broker.session.timeout.ms ($(( $(setting broker.session.timeout.ms) / 1000 ))s) ..."
    fi
    sleep 0.5
  done
  echo "Kafka did not answer within ${wait_s}s; see $logs/server.log" >&2
  exit 1
}

down() {
  if ! running; then rm -f "$pidfile"; return; fi
  local pid; pid="$(cat "$pidfile")"
  kill -TERM "$pid"
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  rm -f "$pidfile"
  echo "Kafka stopped"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  clean) down; rm -rf "$data" "$logs" "$home/storage.properties"; echo "Kafka data removed" ;;
  # Another cluster in use is no reason to start the local broker (`make test`).
  status) if ! in_use; then echo "KAFKA_BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP_SERVERS is not the local broker"
          elif running && port_open; then echo "Kafka $version runs on localhost:$port"
          else echo "Kafka is not running"; exit 3; fi ;;
  *) echo "usage: $0 up|down|clean|status" >&2; exit 2 ;;
esac
