#!/usr/bin/env bash
# Prometheus (Debian) scraping the gateway's /metrics on loopback; alert rules from deploy/prometheus/.
source "$(dirname "$0")/lib.sh"
DIR="$SANDBOX/prometheus"; PIDFILE="$DIR/prometheus.pid"
TARGETS="${MSSGW_SANDBOX_SCRAPE_TARGETS:-127.0.0.1:$GATEWAY_HTTP_PORT}"

case "${1:-up}" in
  install) apt_install prometheus ;;
  up)
    apt_install prometheus
    if pid_alive "$PIDFILE" && port_open "$PROMETHEUS_PORT"; then say "prometheus already up on 127.0.0.1:$PROMETHEUS_PORT"; exit 0; fi
    mkdir -p "$DIR/data"
    rules=""; [ -f "$REPO_ROOT/deploy/prometheus/alerts.yml" ] && rules="rule_files: [\"$REPO_ROOT/deploy/prometheus/alerts.yml\"]"
    targets=$(printf '"%s",' $TARGETS); targets="[${targets%,}]"
    cat >"$DIR/prometheus.yml" <<CONF
global:
  scrape_interval: 2s
  evaluation_interval: 2s
$rules
scrape_configs:
  - job_name: mssgw
    static_configs:
      - targets: $targets
CONF
    promtool check config "$DIR/prometheus.yml" >"$LOG_DIR/promtool.log" 2>&1 || { cat "$LOG_DIR/promtool.log" >&2; die "invalid prometheus configuration"; }
    nohup prometheus --config.file="$DIR/prometheus.yml" --storage.tsdb.path="$DIR/data" \
      --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" --web.enable-lifecycle >"$LOG_DIR/prometheus.log" 2>&1 &
    echo $! >"$PIDFILE"
    wait_port "$PROMETHEUS_PORT" prometheus 20 "$LOG_DIR/prometheus.log"
    say "prometheus up on 127.0.0.1:$PROMETHEUS_PORT scraping $TARGETS"
    ;;
  down) stop_pid "$PIDFILE" prometheus ;;
  status) pid_alive "$PIDFILE" && port_open "$PROMETHEUS_PORT" && say "prometheus up" || { say "prometheus down"; exit 1; } ;;
  *) die "usage: prometheus.sh [install|up|down|status]" ;;
esac
