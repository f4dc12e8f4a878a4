#!/usr/bin/env bash
# with-sandbox.sh "component..." command...: starts the sandbox components that are not running, runs the
# command with the project's Node 22 first on PATH, then stops only what it started (unless MSSGW_SANDBOX_KEEP=1).
source "$(dirname "$0")/lib.sh"
read -r -a wanted <<<"$1"; shift
started=()
stop_started() {
  [ "${MSSGW_SANDBOX_KEEP:-0}" = 1 ] && return 0
  for ((i = ${#started[@]} - 1; i >= 0; i--)); do bash "$LOCAL_DIR/${started[$i]}.sh" down >/dev/null || true; done
}
trap stop_started EXIT
for c in "${wanted[@]}"; do
  if ! bash "$LOCAL_DIR/$c.sh" status >/dev/null 2>&1; then started+=("$c"); fi
  bash "$LOCAL_DIR/$c.sh" up
done
export PATH="$REPO_ROOT/node_modules/.bin:$PATH"
cd "$REPO_ROOT"
set +e
"$@"
rc=$?
set -e
exit $rc
