#!/usr/bin/env bash
# Start, stop or inspect the local sandbox: infra.sh up|down|status|install [redis] [postgres] [kafka] [operator] [prometheus]
# With no component named, acts on all five (or on those MSSGW_SANDBOX_COMPONENTS lists). Idempotent: 'up' on
# running components returns at once.
source "$(dirname "$0")/lib.sh"
action="${1:-up}"; shift || true
components=("$@"); [ ${#components[@]} -eq 0 ] && read -r -a components <<<"${MSSGW_SANDBOX_COMPONENTS:-redis postgres kafka operator prometheus}"
if [ "$action" = down ]; then # stop in reverse order
  for ((i = ${#components[@]} - 1; i >= 0; i--)); do bash "$LOCAL_DIR/${components[$i]}.sh" down; done
  exit 0
fi
rc=0
for c in "${components[@]}"; do
  [ -f "$LOCAL_DIR/$c.sh" ] || die "unknown component '$c' (expected redis, postgres, kafka, operator, prometheus)"
  bash "$LOCAL_DIR/$c.sh" "$action" || rc=$?
done
exit $rc
