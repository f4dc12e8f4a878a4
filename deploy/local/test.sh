#!/usr/bin/env bash
# npm test: type-check, lint, then the whole suite against the real Redis, PostgreSQL, Kafka, Postfix, Dovecot and Prometheus.
source "$(dirname "$0")/lib.sh"
bash "$LOCAL_DIR/bootstrap.sh"
bash "$LOCAL_DIR/helm.sh" install
exec bash "$LOCAL_DIR/with-sandbox.sh" "redis postgres kafka operator prometheus" bash -c '
  set -e
  echo "[test] type-check"; tsc -p tsconfig.json
  echo "[test] lint"; eslint --max-warnings 0 .
  echo "[test] vitest"
  report="$1/vitest-report.json"; shift
  rc=0; vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@" || rc=$?
  # One plain closing line for CI: "tests: N passed, N failed".
  node -e "const r=require(process.argv[1]);console.log(\`tests: \${r.numPassedTests} passed, \${r.numFailedTests} failed\`)" "$report" || true
  exit $rc
' test "$SANDBOX" "$@"
