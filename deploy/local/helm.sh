#!/usr/bin/env bash
# helm for the chart checks (helm lint, helm template): not in Debian nor on npm, so built once from the Go module
# proxy with the machine's Go (about 4 minutes on 2 cores) and kept in $SANDBOX/bin.
source "$(dirname "$0")/lib.sh"
HELM_VERSION="${MSSGW_HELM_VERSION:-v3.16.4}"
BIN="$SANDBOX/bin/helm"
case "${1:-install}" in
  install)
    if [ -x "$BIN" ] && "$BIN" version --short 2>/dev/null | grep -q "${HELM_VERSION%.*}"; then exit 0; fi
    command -v go >/dev/null || apt_install golang-go
    say "building helm $HELM_VERSION from the Go module proxy (first run only, a few minutes)"
    mkdir -p "$SANDBOX/bin"
    GOBIN="$SANDBOX/bin" GOFLAGS=-mod=mod go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >"$LOG_DIR/helm-build.log" 2>&1 \
      || { tail -n 20 "$LOG_DIR/helm-build.log" >&2; die "could not build helm (is the Go module proxy reachable?); see $LOG_DIR/helm-build.log"; }
    say "helm $("$BIN" version --short) in $BIN"
    ;;
  path) echo "$BIN" ;;
  *) die "usage: helm.sh [install|path]" ;;
esac
