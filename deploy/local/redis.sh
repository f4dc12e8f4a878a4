#!/usr/bin/env bash
# Redis for the queues and the status store: AOF on, no eviction (BullMQ requires it), loopback only.
source "$(dirname "$0")/lib.sh"
DIR="$SANDBOX/redis"; PIDFILE="$DIR/redis.pid"

case "${1:-up}" in
  install) apt_install redis-server ;;
  up)
    apt_install redis-server
    if pid_alive "$PIDFILE" && port_open "$REDIS_PORT"; then say "redis already up on 127.0.0.1:$REDIS_PORT"; exit 0; fi
    mkdir -p "$DIR"
    cat >"$DIR/redis.conf" <<CONF
bind 127.0.0.1
port $REDIS_PORT
protected-mode yes
daemonize yes
pidfile $PIDFILE
dir $DIR
logfile $LOG_DIR/redis.log
appendonly yes
appendfsync ${MSSGW_SANDBOX_REDIS_FSYNC:-everysec}
save ""
maxmemory-policy noeviction
CONF
    redis-server "$DIR/redis.conf" </dev/null >/dev/null 2>&1
    wait_port "$REDIS_PORT" redis 15 "$LOG_DIR/redis.log"
    # Redis listens while it still loads its AOF (large after a benchmark) and answers LOADING until done; a gateway
    # started then answers AE to every result. Ready means PING answers PONG.
    tries=600
    until [ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; do
      tries=$((tries - 1)); [ "$tries" -gt 0 ] || die "redis still loading its data after 120 s; see $LOG_DIR/redis.log"
      sleep 0.2
    done
    say "redis up on 127.0.0.1:$REDIS_PORT (AOF, data in $DIR)"
    ;;
  down) stop_pid "$PIDFILE" redis ;;
  status) pid_alive "$PIDFILE" && port_open "$REDIS_PORT" && say "redis up on 127.0.0.1:$REDIS_PORT" || { say "redis down"; exit 1; } ;;
  *) die "usage: redis.sh [install|up|down|status]" ;;
esac
