#!/usr/bin/env bash
# The chart checks' tools, built with the machine's Go from the Go module proxy and kept in $SANDBOX/bin:
# - helm (helm lint, helm template): not in Debian nor on npm; built once (about 4 minutes on 2 cores);
# - k8s-validate (deploy/tools/k8s-validate): decodes each rendered manifest strictly into the k8s.io/api types, the
#   schema check kubeconform would make if its schemas (on GitHub) could be downloaded here; built again when its
#   source changes (seconds once helm's build filled the module cache: both use k8s.io/api v0.31.3).
source "$(dirname "$0")/lib.sh"
HELM_VERSION="${MSSGW_HELM_VERSION:-v3.16.4}"
BIN="$SANDBOX/bin/helm"
VALIDATOR="$SANDBOX/bin/k8s-validate"
VALIDATOR_SRC="$REPO_ROOT/deploy/tools/k8s-validate"
need_go() { command -v go >/dev/null || apt_install golang-go; }
case "${1:-install}" in
  install)
    if ! { [ -x "$BIN" ] && "$BIN" version --short 2>/dev/null | grep -q "${HELM_VERSION%.*}"; }; then
      need_go
      say "building helm $HELM_VERSION from the Go module proxy (first run only, a few minutes)"
      mkdir -p "$SANDBOX/bin"
      GOBIN="$SANDBOX/bin" GOFLAGS=-mod=mod go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >"$LOG_DIR/helm-build.log" 2>&1 \
        || { tail -n 20 "$LOG_DIR/helm-build.log" >&2; die "could not build helm (is the Go module proxy reachable?); see $LOG_DIR/helm-build.log"; }
      say "helm $("$BIN" version --short) in $BIN"
    fi
    sum=$(cat "$VALIDATOR_SRC"/go.mod "$VALIDATOR_SRC"/go.sum "$VALIDATOR_SRC"/*.go | sha256sum | cut -c1-16)
    if ! { [ -x "$VALIDATOR" ] && [ "$(cat "$VALIDATOR.sum" 2>/dev/null)" = "$sum" ]; }; then
      need_go
      say "building k8s-validate (deploy/tools/k8s-validate)"
      mkdir -p "$SANDBOX/bin"
      (cd "$VALIDATOR_SRC" && go build -o "$VALIDATOR" .) >"$LOG_DIR/k8s-validate-build.log" 2>&1 \
        || { tail -n 20 "$LOG_DIR/k8s-validate-build.log" >&2; die "could not build k8s-validate (is the Go module proxy reachable?); see $LOG_DIR/k8s-validate-build.log"; }
      echo "$sum" >"$VALIDATOR.sum"
    fi
    ;;
  path) echo "$BIN" ;;
  validator-path) echo "$VALIDATOR" ;;
  *) die "usage: helm.sh [install|path|validator-path]" ;;
esac
