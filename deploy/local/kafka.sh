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

# A CA of its own and a server certificate for 127.0.0.1 (the SASL_SSL listener), and the gateway's SASL password.
make_tls() {
  local tls="$DIR/tls" secrets="$SANDBOX/secrets"
  mkdir -p "$tls" "$secrets"; chmod 700 "$tls" "$secrets"
  command -v openssl >/dev/null || apt_install openssl
  if [ ! -f "$tls/server.pem" ] || ! openssl x509 -checkend 2592000 -noout -in "$tls/ca.pem" >/dev/null 2>&1; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/O=MSSGW Sandbox/CN=MSSGW Sandbox Kafka CA" \
      -keyout "$tls/ca.key" -out "$tls/ca.pem" -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/O=MSSGW Sandbox/CN=127.0.0.1" -keyout "$tls/server.key" -out "$tls/server.csr" 2>/dev/null
    openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial -days 825 -out "$tls/server.crt" \
      -extfile <(printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n') 2>/dev/null
    # Kafka's PEM key store: the unencrypted PKCS#8 key, then the certificate chain, in one file.
    cat "$tls/server.key" "$tls/server.crt" >"$tls/server.pem"
    rm -f "$tls/server.csr" "$tls/client.pem"
  fi
  # The gateway's client certificate for the mutual-TLS listener.
  if [ ! -f "$tls/client.pem" ]; then
    openssl req -newkey rsa:2048 -nodes -subj "/O=MSSGW Sandbox/CN=mssgw-gateway" -keyout "$tls/client.key" -out "$tls/client.csr" 2>/dev/null
    openssl x509 -req -in "$tls/client.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial -days 825 -out "$tls/client.pem" \
      -extfile <(printf 'extendedKeyUsage=clientAuth\n') 2>/dev/null
    rm -f "$tls/client.csr"
  fi
  [ -f "$secrets/kafka-gateway-password" ] || { openssl rand -hex 16 | tr -d '\n' >"$secrets/kafka-gateway-password"; }
  chmod 600 "$tls"/*.key "$tls/server.pem" "$secrets/kafka-gateway-password"
}

case "${1:-up}" in
  install) install_jars ;;
  up)
    if pid_alive "$PIDFILE" && port_open "$KAFKA_PORT" && port_open "$KAFKA_SASL_PORT" && port_open "$KAFKA_MTLS_PORT"; then
      say "kafka already up on 127.0.0.1:$KAFKA_PORT (SASL_SSL :$KAFKA_SASL_PORT, mutual TLS :$KAFKA_MTLS_PORT)"; exit 0
    fi
    # A broker from before the secured listeners: restarted with them.
    pid_alive "$PIDFILE" && stop_pid "$PIDFILE" kafka
    install_jars
    make_tls
    mkdir -p "$DIR/data"
    cat >"$DIR/server.properties" <<CONF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT,SASL_SSL://127.0.0.1:$KAFKA_SASL_PORT,SSL://127.0.0.1:$KAFKA_MTLS_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,SASL_SSL://127.0.0.1:$KAFKA_SASL_PORT,SSL://127.0.0.1:$KAFKA_MTLS_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL
listener.name.ssl.ssl.client.auth=required
sasl.enabled.mechanisms=PLAIN
listener.name.sasl_ssl.sasl.enabled.mechanisms=PLAIN
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_gateway="$(cat "$SANDBOX/secrets/kafka-gateway-password")";
ssl.keystore.type=PEM
ssl.keystore.location=$DIR/tls/server.pem
ssl.truststore.type=PEM
ssl.truststore.location=$DIR/tls/ca.pem
ssl.enabled.protocols=TLSv1.3,TLSv1.2
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
    wait_port "$KAFKA_SASL_PORT" kafka-sasl 30 "$LOG_DIR/kafka.out"
    wait_port "$KAFKA_MTLS_PORT" kafka-mtls 30 "$LOG_DIR/kafka.out"
    say "kafka up on 127.0.0.1:$KAFKA_PORT; TLS + SASL/PLAIN (user gateway) on :$KAFKA_SASL_PORT; mutual TLS on :$KAFKA_MTLS_PORT (KRaft, data in $DIR/data, CA $DIR/tls/ca.pem)"
    ;;
  down) stop_pid "$PIDFILE" kafka ;;
  status) pid_alive "$PIDFILE" && port_open "$KAFKA_PORT" && port_open "$KAFKA_SASL_PORT" && port_open "$KAFKA_MTLS_PORT" && say "kafka up on 127.0.0.1:$KAFKA_PORT" || { say "kafka down"; exit 1; } ;;
  *) die "usage: kafka.sh [install|up|down|status]" ;;
esac
