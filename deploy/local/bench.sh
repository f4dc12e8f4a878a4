#!/usr/bin/env bash
# npm run bench: the benchmarks, on the sandbox (Redis, Kafka, operator).
source "$(dirname "$0")/lib.sh"
bash "$LOCAL_DIR/bootstrap.sh"
export KAFKAJS_NO_PARTITIONER_WARNING=1
exec bash "$LOCAL_DIR/with-sandbox.sh" "redis postgres kafka operator" node bench/run.ts "$@"
