#!/usr/bin/env bash
# npm run demo [-- --keep-running]: the main job end to end on the sandbox operator.
source "$(dirname "$0")/lib.sh"
bash "$LOCAL_DIR/bootstrap.sh"
keep=0; for a in "$@"; do [ "$a" = --keep-running ] && keep=1; done
[ $keep = 1 ] && export MSSGW_SANDBOX_KEEP=1
# Fresh demo state in its own Redis key prefix and PostgreSQL schema; the log goes to a file, the table to the terminal.
run_id=$(date +%s)
export MSSGW_REDIS_PREFIX="${MSSGW_REDIS_PREFIX:-mssgw-demo-$run_id}"
export MSSGW_POSTGRES_SCHEMA="${MSSGW_POSTGRES_SCHEMA:-mssgw_demo_$run_id}"
export MSSGW_LOG_LEVEL="${MSSGW_LOG_LEVEL:-info}"
say "gateway log: $LOG_DIR/demo.log"
export MSSGW_LOG_FILE="$LOG_DIR/demo.log"
# The demo's configuration, named: nothing of it is a default (deploy/demo/gateway.yaml).
exec bash "$LOCAL_DIR/with-sandbox.sh" "redis postgres operator" services/gateway/bin/mssgw demo --config "$REPO_ROOT/deploy/demo/gateway.yaml" "$@"
