#!/usr/bin/env bash
# Apache Kafka 4.x, single-node KRaft (broker + controller), from the Maven Central jars, on the machine's Java 17.
source "$(dirname "$0")/lib.sh"
DIR="$SANDBOX/kafka"; LIBS="$DIR/libs"; PIDFILE="$DIR/kafka.pid"

install_jars() {
  command -v java >/dev/null || apt_install openjdk-17-jre-headless
  if [ -f "$LIBS/.complete" ] && [ "$LIBS/.complete" -nt "$LOCAL_DIR/kafka/pom.xml" ]; then return 0; fi
  command -v mvn >/dev/null || apt_install maven
  say "fetching the Kafka broker jars from Maven Central (first run only)"
  rm -rf "$LIBS"; mkdir -p "$LIBS"
  mvn -q -B -f "$LOCAL_DIR/kafka/pom.xml" org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$LIBS" >"$LOG_DIR/kafka-mvn.log" 2>&1 \
    || die "Maven could not fetch the Kafka jars (is Maven Central reachable?); see $LOG_DIR/kafka-mvn.log"
  touch "$LIBS/.complete"
}

case "${1:-up}" in
  install) install_jars ;;
  up)
    if pid_alive "$PIDFILE" && port_open "$KAFKA_PORT"; then say "kafka already up on 127.0.0.1:$KAFKA_PORT"; exit 0; fi
    install_jars
    mkdir -p "$DIR/data"
    cat >"$DIR/server.properties" <<CONF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DIR/data
num.partitions=1
num.network.threads=2
num.io.threads=2
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
CONF
    JAVA_OPTS=(-Xms256m -Xmx512m -XX:+UseG1GC -Djava.awt.headless=true -Dkafka.logs.dir="$LOG_DIR"
      -Dlog4j2.configurationFile="$LOCAL_DIR/kafka/log4j2.properties")
    if [ ! -f "$DIR/data/meta.properties" ]; then
      CID=$(java -cp "$LIBS/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)
      java "${JAVA_OPTS[@]}" -cp "$LIBS/*" kafka.tools.StorageTool format -t "$CID" -c "$DIR/server.properties" --ignore-formatted \
        >"$LOG_DIR/kafka-format.log" 2>&1 || die "kafka storage format failed; see $LOG_DIR/kafka-format.log"
    fi
    nohup java "${JAVA_OPTS[@]}" -cp "$LIBS/*" kafka.Kafka "$DIR/server.properties" >"$LOG_DIR/kafka.out" 2>&1 &
    echo $! >"$PIDFILE"
    wait_port "$KAFKA_PORT" kafka 90 "$LOG_DIR/kafka.out"
    say "kafka up on 127.0.0.1:$KAFKA_PORT (KRaft, data in $DIR/data)"
    ;;
  down) stop_pid "$PIDFILE" kafka ;;
  status) pid_alive "$PIDFILE" && port_open "$KAFKA_PORT" && say "kafka up on 127.0.0.1:$KAFKA_PORT" || { say "kafka down"; exit 1; } ;;
  *) die "usage: kafka.sh [install|up|down|status]" ;;
esac
