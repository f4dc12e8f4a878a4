# Shared helpers for the local sandbox scripts (sourced, not run).
# Everything lives under $MSSGW_SANDBOX (default: <repo>/.sandbox) and listens on loopback only.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SANDBOX="${MSSGW_SANDBOX:-$REPO_ROOT/.sandbox}"
LOCAL_DIR="$REPO_ROOT/deploy/local"
LOG_DIR="$SANDBOX/log"
mkdir -p "$SANDBOX" "$LOG_DIR"
# Daemons that work as their own system users (Postfix, Dovecot, PostgreSQL) cannot traverse a checkout under /root
# (0700) or mktemp -d, so their state lives under /var/lib, one directory per sandbox, linked from the sandbox.
STATE_ROOT="${MSSGW_SANDBOX_STATE:-/var/lib/mssgw-sandbox}"
SANDBOX_STATE="$STATE_ROOT/$(printf '%s' "$SANDBOX" | sha256sum | cut -c1-12)"

# Ports of the sandbox; the gateway's demo defaults (libs/config) use the same numbers.
REDIS_PORT="${MSSGW_SANDBOX_REDIS_PORT:-16379}"
KAFKA_PORT="${MSSGW_SANDBOX_KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${MSSGW_SANDBOX_KAFKA_CONTROLLER_PORT:-19093}"
# The same broker behind TLS and SASL/PLAIN, as a hospital cluster would be.
KAFKA_SASL_PORT="${MSSGW_SANDBOX_KAFKA_SASL_PORT:-19094}"
# And behind mutual TLS (a client certificate from the same CA).
KAFKA_MTLS_PORT="${MSSGW_SANDBOX_KAFKA_MTLS_PORT:-19095}"
SMTP_SUBMISSION_PORT="${MSSGW_SANDBOX_SMTP_PORT:-10587}"
SMTP_INJECT_PORT="${MSSGW_SANDBOX_SMTP_INJECT_PORT:-10025}"
IMAP_PORT="${MSSGW_SANDBOX_IMAP_PORT:-10143}"
PROMETHEUS_PORT="${MSSGW_SANDBOX_PROMETHEUS_PORT:-19090}"
POSTGRES_PORT="${MSSGW_SANDBOX_POSTGRES_PORT:-15432}"
# Address the sandbox servers listen on (0.0.0.0 in the operator container image).
BIND="${MSSGW_SANDBOX_BIND:-127.0.0.1}"
GATEWAY_HTTP_PORT="${MSSGW_SANDBOX_GATEWAY_HTTP_PORT:-8088}"

say() { printf '[sandbox] %s\n' "$*"; }
die() { printf '[sandbox] error: %s\n' "$*" >&2; exit 1; }

need_root() {
  [ "$(id -u)" = 0 ] || die "$1 needs root (it installs Debian packages or starts system daemons); run as root or install it yourself: $2"
}

# apt_install PKG... : install only the Debian packages that are missing.
apt_install() {
  local missing=()
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  need_root "installing ${missing[*]}" "apt-get install ${missing[*]}"
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$LOG_DIR/apt.log" 2>&1; then
    apt-get update -qq >>"$LOG_DIR/apt.log" 2>&1 || die "apt-get update failed (is Debian's package mirror reachable?); see $LOG_DIR/apt.log"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$LOG_DIR/apt.log" 2>&1 \
      || die "could not install ${missing[*]}; see $LOG_DIR/apt.log"
  fi
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_port PORT NAME SECONDS [LOGFILE]
wait_port() {
  local i
  for ((i = 0; i < $3 * 10; i++)); do port_open "$1" && return 0; sleep 0.1; done
  [ -n "${4:-}" ] && [ -f "$4" ] && tail -n 30 "$4" >&2
  die "$2 did not open port $1 within $3 s"
}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# stop_pid PIDFILE NAME: TERM, wait, then KILL.
stop_pid() {
  local pidfile=$1 name=$2 i
  if pid_alive "$pidfile"; then
    local pid; pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    say "$name stopped"
  fi
  rm -f "$pidfile"
}

# state_dir NAME: the directory NAME under the sandbox's state, created and linked as $SANDBOX/NAME. A sandbox laid
# anew (its link gone) gets new state: nothing of an older sandbox at the same path survives.
state_dir() {
  local dir="$SANDBOX_STATE/$1"
  [ -L "$SANDBOX/$1" ] || rm -rf "$dir" "${SANDBOX:?}/$1"
  mkdir -p "$dir"
  chmod 755 "$STATE_ROOT" "$SANDBOX_STATE"
  ln -sfn "$dir" "$SANDBOX/$1"
  printf '%s' "$dir"
}

# Says once, plainly, where the state of the daemons went when the checkout is one they could not have reached.
say_state_dir() {
  runuser -u nobody -- test -x "$SANDBOX" 2>/dev/null || say "$1 state in $SANDBOX_STATE (its daemons cannot traverse $SANDBOX)"
}

# The sandbox's test CA ($SANDBOX/pki/ca.pem), which signs the operator's and PostgreSQL's server certificates and
# the mailboxes' client certificates. A new CA (none yet, or one expiring within 30 days) drops what the old signed.
sandbox_ca() {
  local pki="$SANDBOX/pki"
  if [ ! -f "$pki/ca.pem" ] || ! openssl x509 -checkend 2592000 -noout -in "$pki/ca.pem" >/dev/null; then
    say "generating the test PKI in $pki"
    rm -rf "$pki"/*.pem "$pki"/*.key "$pki/clients"; mkdir -p "$pki/clients"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/O=MSSGW Sandbox/CN=MSSGW Sandbox Test CA" \
      -keyout "$pki/ca.key" -out "$pki/ca.pem" -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    chmod 600 "$pki/ca.key"
  fi
}

# server_cert NAME CN: $SANDBOX/pki/NAME.pem and .key, a server certificate from the sandbox CA for CN, localhost and
# 127.0.0.1 (kept while the CA is).
server_cert() {
  local pki="$SANDBOX/pki"
  sandbox_ca
  [ -f "$pki/$1.pem" ] && return 0
  openssl req -newkey rsa:2048 -nodes -subj "/O=MSSGW Sandbox/CN=$2" -keyout "$pki/$1.key" -out "$pki/$1.csr" 2>/dev/null
  openssl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" -CAcreateserial -days 825 -out "$pki/$1.pem" \
    -extfile <(printf 'subjectAltName=DNS:%s,DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n' "$2") 2>/dev/null
  rm -f "$pki/$1.csr"; chmod 600 "$pki/$1.key"
}
