#!/usr/bin/env bash
# PostgreSQL (Debian's, 15 or newer) for the message store: a private cluster made by initdb in the sandbox's state
# directory (it runs as the postgres user), on loopback only, TLS with a server certificate from the sandbox CA,
# scram-sha-256 passwords, synchronous_commit on. The system's own clusters are never touched.
source "$(dirname "$0")/lib.sh"
SECRETS="$SANDBOX/secrets"; PASSWORD_FILE="$SECRETS/postgres-password"
DB_USER=mssgw; DB_NAME=mssgw

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
as_postgres() { (cd / && runuser -u postgres -- "$@"); } # from a directory the postgres user can enter

case "${1:-up}" in
  install) apt_install postgresql ;;
  up)
    apt_install postgresql
    need_root "the sandbox PostgreSQL" "run as root: initdb and the server run as the postgres user"
    BIN="$(pg_bin)"; [ -x "$BIN/initdb" ] || die "no PostgreSQL server binaries under /usr/lib/postgresql"
    DIR="$(state_dir postgres)"; DATA="$DIR/data"
    if port_open "$POSTGRES_PORT" && as_postgres "$BIN/pg_ctl" status -D "$DATA" >/dev/null 2>&1; then
      say "postgres already up on 127.0.0.1:$POSTGRES_PORT"; exit 0
    fi
    say_state_dir postgres
    mkdir -p "$SECRETS"; chmod 700 "$SECRETS"
    [ -f "$PASSWORD_FILE" ] || { openssl rand -hex 16 | tr -d '\n' >"$PASSWORD_FILE"; chmod 600 "$PASSWORD_FILE"; }
    server_cert postgres localhost
    mkdir -p "$DIR/run" "$DIR/tls"
    # The server reads its key as postgres and refuses one that others can read.
    install -m 600 -o postgres "$SANDBOX/pki/postgres.key" "$DIR/tls/server.key"
    install -m 644 -o postgres "$SANDBOX/pki/postgres.pem" "$DIR/tls/server.pem"
    chown -R postgres "$DIR"
    if [ ! -f "$DATA/PG_VERSION" ]; then
      as_postgres "$BIN/initdb" -D "$DATA" -U postgres --auth-local=peer --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 \
        >"$LOG_DIR/postgres-initdb.log" 2>&1 || { tail -n 20 "$LOG_DIR/postgres-initdb.log" >&2; die "initdb failed"; }
    fi
    cat >"$DATA/postgresql.auto.conf" <<CONF
# Written by deploy/local/postgres.sh on every start.
listen_addresses = '127.0.0.1'
port = $POSTGRES_PORT
unix_socket_directories = '$DIR/run'
ssl = on
ssl_cert_file = '$DIR/tls/server.pem'
ssl_key_file = '$DIR/tls/server.key'
ssl_min_protocol_version = 'TLSv1.2'
password_encryption = 'scram-sha-256'
# An acknowledged result is on disk: the store's commit is what the ACK waits for.
synchronous_commit = on
fsync = on
max_connections = 200
shared_buffers = '256MB'
logging_collector = off
CONF
    # Loopback only, TLS or not (the gateway's configuration chooses); local socket for the postgres user.
    printf 'local all postgres peer\nhost all all 127.0.0.1/32 scram-sha-256\n' >"$DATA/pg_hba.conf"
    chown postgres "$DATA/postgresql.auto.conf" "$DATA/pg_hba.conf"
    touch "$DIR/postgres.log"; chown postgres "$DIR/postgres.log"; ln -sfn "$DIR/postgres.log" "$LOG_DIR/postgres.log"
    as_postgres "$BIN/pg_ctl" start -w -t 60 -D "$DATA" -l "$DIR/postgres.log" >/dev/null \
      || { tail -n 20 "$DIR/postgres.log" >&2; die "postgres did not start; see $LOG_DIR/postgres.log"; }
    psql_admin() { as_postgres "$BIN/psql" -h "$DIR/run" -p "$POSTGRES_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qAt "$@"; }
    password=$(cat "$PASSWORD_FILE")
    # createdb: tests make throwaway databases of their own (migrations, faults).
    if [ "$(psql_admin -c "select 1 from pg_roles where rolname = '$DB_USER'")" != 1 ]; then
      psql_admin -c "create role $DB_USER login createdb password '$password'"
    else
      psql_admin -c "alter role $DB_USER createdb password '$password'"
    fi
    [ "$(psql_admin -c "select 1 from pg_database where datname = '$DB_NAME'")" = 1 ] || psql_admin -c "create database $DB_NAME owner $DB_USER"
    say "postgres up on 127.0.0.1:$POSTGRES_PORT (TLS, CA $SANDBOX/pki/ca.pem), database $DB_NAME, user $DB_USER (password in $PASSWORD_FILE)"
    ;;
  down)
    BIN="$(pg_bin)"; DATA="$SANDBOX_STATE/postgres/data"
    if [ -n "$BIN" ] && [ -f "$DATA/postmaster.pid" ] && as_postgres "$BIN/pg_ctl" status -D "$DATA" >/dev/null 2>&1; then
      as_postgres "$BIN/pg_ctl" stop -D "$DATA" -m fast -w >/dev/null; say "postgres stopped"
    fi
    ;;
  status)
    port_open "$POSTGRES_PORT" && say "postgres up" || { say "postgres down"; exit 1; } ;;
  *) die "usage: postgres.sh [install|up|down|status]" ;;
esac
