#!/usr/bin/env bash
# Installs what the project needs on a fresh Debian 12 machine: Debian packages of the sandbox, the npm
# dependencies (with Node 22 from the npm registry, the system's Node is left alone). Quick when done already.
source "$(dirname "$0")/lib.sh"
command -v npm >/dev/null || die "npm is missing: install Debian's nodejs and npm (any Node >= 18 runs npm; the project brings its own Node 22)"
apt_install redis-server postfix dovecot-imapd dovecot-core prometheus openssl libxml2-utils docker-compose poppler-utils unzip
command -v java >/dev/null || apt_install openjdk-17-jre-headless
command -v mvn >/dev/null || apt_install maven
# The operator console's browser tests (test/integration/console.test.ts) drive Debian's Chromium; fonts for its screenshots.
apt_install chromium fonts-dejavu-core
cd "$REPO_ROOT"
stamp=node_modules/.mssgw-installed
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ] || [ package.json -nt "$stamp" ] || [ ! -x node_modules/.bin/node ]; then
  say "installing npm dependencies (Node 22 comes with them)"
  if [ -f package-lock.json ]; then npm ci --no-audit --no-fund >"$LOG_DIR/npm.log" 2>&1; else npm install --no-audit --no-fund >"$LOG_DIR/npm.log" 2>&1; fi \
    || { tail -n 30 "$LOG_DIR/npm.log" >&2; die "npm install failed (is the npm registry reachable?); see $LOG_DIR/npm.log"; }
  touch "$stamp"
fi
node_modules/.bin/node -e 'process.exit(+process.versions.node.split(".")[0] >= 22 ? 0 : 1)' || die "node_modules/.bin/node is not Node 22"
