#!/usr/bin/env bash
# npm test: type-check, lint, then the whole suite against the real Redis, Kafka, Postfix, Dovecot and Prometheus.
source "$(dirname "$0")/lib.sh"
bash "$LOCAL_DIR/bootstrap.sh"
exec bash "$LOCAL_DIR/with-sandbox.sh" "redis kafka operator prometheus" bash -c '
  set -e
  echo "[test] type-check"; tsc -p tsconfig.json
  echo "[test] lint"; eslint --max-warnings 0 .
  echo "[test] vitest"; vitest run "$@"
' test "$@"
