#!/usr/bin/env bash
# The sandbox MSSanté operator: Postfix (submission with mandatory client certificate, TLS >= 1.2, the ECDHE suites,
# real DSNs) and Dovecot IMAP (client certificate + password) holding the mailboxes, plus a small test PKI.
# Runs as separate Postfix and Dovecot instances with their own configuration under $SANDBOX/operator,
# so the system's own /etc/postfix and /etc/dovecot are never touched.
source "$(dirname "$0")/lib.sh"
# Postfix, Dovecot and dovecot-lda work as the postfix, dovecot and mssgw-vmail users: the operator's state
# (configuration, queue, mail, its logs) lives in the sandbox's state directory (lib.sh), linked from
# $SANDBOX/operator and $SANDBOX/mail. The PKI stays in the sandbox: the daemons read their keys as root.
DIR="$SANDBOX_STATE/operator"; PKI="$SANDBOX/pki"; SECRETS="$SANDBOX/secrets"; MAIL="$SANDBOX_STATE/mail"; OPLOG="$SANDBOX_STATE/operator-log"
PF="$DIR/postfix"; DV="$DIR/dovecot"
# Applicative mailboxes (BAL applicatives) of the demo hospital; each gets a client certificate and an IMAP password.
MAILBOXES="${MSSGW_SANDBOX_MAILBOXES:-labo-noreply@chu-demo.mssante.test imagerie-noreply@chu-demo.mssante.test}"
# Domains whose mail the sandbox delivers locally. Any local part is accepted except those starting with
# "unknown", which bounce with 5.1.1 after acceptance (a real asynchronous failure DSN).
DOMAINS="${MSSGW_SANDBOX_DOMAINS:-chu-demo.mssante.test cabinet-demo.mssante.test patient.mssante.fr}"
VMAIL=mssgw-vmail
# ECO.1.1.3: the four ECDHE-RSA suites an MSSanté client may use.
ECDHE_SUITES="ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-SHA384:ECDHE-RSA-AES128-SHA256"

make_pki() {
  mkdir -p "$PKI/clients" "$SECRETS"; chmod 700 "$SECRETS"
  server_cert operator mail.operator.test
  for mb in $MAILBOXES; do
    if [ ! -f "$PKI/clients/$mb.pem" ]; then
      openssl req -newkey rsa:2048 -nodes -subj "/O=CHU Demo/OU=BAL applicative/CN=$mb" -keyout "$PKI/clients/$mb.key" -out "$PKI/clients/$mb.csr" 2>/dev/null
      openssl x509 -req -in "$PKI/clients/$mb.csr" -CA "$PKI/ca.pem" -CAkey "$PKI/ca.key" -CAcreateserial -days 825 -out "$PKI/clients/$mb.pem" \
        -extfile <(printf 'subjectAltName=email:%s\nextendedKeyUsage=clientAuth\nkeyUsage=digitalSignature\n' "$mb") 2>/dev/null
      rm -f "$PKI/clients/$mb.csr"
    fi
    [ -f "$SECRETS/$mb.imap-password" ] || { openssl rand -hex 16 | tr -d '\n' >"$SECRETS/$mb.imap-password"; }
  done
  [ -f "$SECRETS/sandbox-imap-password" ] || { openssl rand -hex 16 | tr -d '\n' >"$SECRETS/sandbox-imap-password"; }
  chmod 600 "$PKI"/*.key "$PKI"/clients/*.key "$SECRETS"/*
}

# Lays out the state directory (new state if the sandbox itself is new) and links it from the sandbox.
prepare_state() {
  need_root "the sandbox operator" "run as root: it starts Postfix and Dovecot as their system users"
  [ -L "$SANDBOX/operator" ] || rm -rf "$MAIL" "$OPLOG"
  state_dir operator >/dev/null; state_dir mail >/dev/null; mkdir -p "$OPLOG"
  # postlogd writes the Postfix log as postfix; Dovecot's log process writes its own as root.
  chown postfix "$OPLOG"
  for f in postfix.log dovecot.log; do ln -sfn "$OPLOG/$f" "$LOG_DIR/$f"; done
  say_state_dir operator
}

configure_postfix() {
  mkdir -p "$PF/etc" "$PF/queue" "$PF/data" "$MAIL" "$DV"; chown postfix "$PF/data"
  chown "$VMAIL:$VMAIL" "$MAIL"
  # Which recipients exist. Postfix also looks up "@domain": the pattern needs a local part so that lookup fails.
  {
    echo 'if !/^unknown/'
    echo '/^[^@]+@/	OK'
    echo 'endif'
  } >"$PF/etc/vmailbox"
  printf '/^unknown[^@]*@/\terror:5.1.1 User unknown in the sandbox operator\n' >"$PF/etc/transport"
  # Recipients starting with "silent" are accepted (250) and then held: no DSN ever comes (for timeout tests).
  # At RCPT time: "reject*" gets 550, "defer*" gets 450 (SMTP-level refusals, as opposed to DSNs).
  printf '/^silent[^@]*@/\tHOLD silent recipient (sandbox)\n/^reject[^@]*@/\t550 5.1.1 Recipient address rejected (sandbox)\n/^defer[^@]*@/\t450 4.2.0 Mailbox busy, try later (sandbox)\n' >"$PF/etc/hold"
  cat >"$PF/etc/main.cf" <<CONF
compatibility_level = 3.6
queue_directory = $PF/queue
data_directory = $PF/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mail.operator.test
mydomain = operator.test
myorigin = operator.test
mydestination =
inet_interfaces = $BIND
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
local_recipient_maps =
relayhost =
default_transport = error:5.4.4 no delivery outside the sandbox
relay_transport = error:5.4.4 no delivery outside the sandbox
virtual_mailbox_domains = ${DOMAINS// /, }
virtual_mailbox_maps = regexp:$PF/etc/vmailbox
# Final delivery by pipe(8) into dovecot-lda, flagged X (final delivery), so success DSNs say "delivered"
# (Dovecot's LMTP does not announce DSN, for which Postfix would report "relayed"). virtual(8) cannot serve
# an open set of mailboxes: it forbids \$n substitution in regexp maps.
virtual_transport = dovecot
# Unknown mailboxes are accepted at RCPT time on the submission port, then bounce: a real failure DSN (5.1.1).
# ("silent*" recipients are held in the queue instead: no DSN at all.)
transport_maps = regexp:$PF/etc/transport
dovecot_destination_recipient_limit = 1
message_size_limit = 104857600
virtual_mailbox_limit = 0
smtputf8_enable = no
biff = no
maillog_file_prefixes = /var, /dev/stdout, $OPLOG
maillog_file = $OPLOG/postfix.log
smtpd_banner = \$myhostname ESMTP MSSGW sandbox operator
smtpd_tls_cert_file = $PKI/operator.pem
smtpd_tls_key_file = $PKI/operator.key
smtpd_tls_CAfile = $PKI/ca.pem
smtpd_tls_security_level = may
smtpd_tls_protocols = >=TLSv1.2
smtpd_tls_mandatory_protocols = >=TLSv1.2
smtpd_tls_mandatory_ciphers = high
tls_high_cipherlist = $ECDHE_SUITES
smtpd_tls_mandatory_exclude_ciphers = aNULL
smtpd_tls_loglevel = 1
smtpd_tls_received_header = yes
CONF
  cat >"$PF/etc/master.cf" <<CONF
# Submission for applicative mailboxes: STARTTLS mandatory, trusted client certificate mandatory.
$BIND:$SMTP_SUBMISSION_PORT inet n - n - - smtpd
  -o syslog_name=postfix/submission
  -o smtpd_tls_security_level=encrypt
  -o smtpd_tls_ask_ccert=yes
  -o smtpd_tls_req_ccert=yes
  -o smtpd_reject_unlisted_recipient=no
  -o smtpd_client_restrictions=permit_tls_all_clientcerts,reject
  -o smtpd_relay_restrictions=permit_tls_all_clientcerts,reject
  -o smtpd_recipient_restrictions=check_recipient_access,regexp:$PF/etc/hold,permit
# Plain injection port on loopback, for test fixtures (MDNs written by recipients' software).
$BIND:$SMTP_INJECT_PORT inet n - n - - smtpd
  -o syslog_name=postfix/inject
  -o smtpd_tls_security_level=none
  -o smtpd_relay_restrictions=permit_mynetworks,reject_unauth_destination
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
dovecot   unix  -       n       n       -       -       pipe
  flags=DRXhu user=$VMAIL:$VMAIL argv=/usr/lib/dovecot/dovecot-lda -c $DV/lda.conf -f \${sender} -o mail_location=maildir:$MAIL/\${domain}/\${user}
CONF
  cat >"$DV/lda.conf" <<CONF
# dovecot-lda as run by Postfix pipe(8), as $VMAIL: the mailbox path comes from the command line.
log_path = /dev/stderr
first_valid_uid = 100
mail_location = maildir:$MAIL/unused
CONF
  chmod 644 "$DV/lda.conf"
  # 'postfix check' exits 1 on Debian without saying why when run on an alternate directory; set-permissions
  # creates the queue tree, and a real configuration error makes 'postfix start' below fail loudly.
  postfix -c "$PF/etc" set-permissions >/dev/null 2>&1 || true
}

configure_dovecot() {
  mkdir -p "$DV/run" "$DV/state"
  : >"$DV/passwd"
  for mb in $MAILBOXES; do echo "$mb:{PLAIN}$(cat "$SECRETS/$mb.imap-password")" >>"$DV/passwd"; done
  chmod 640 "$DV/passwd"; chgrp dovecot "$DV/passwd"
  cat >"$DV/dovecot.conf" <<CONF
# Sandbox operator IMAP: TLS >= 1.2, a trusted client certificate required, then LOGIN/PLAIN with the mailbox password.
base_dir = $DV/run
state_dir = $DV/state
instance_name = mssgw-sandbox
protocols = imap
listen = $BIND
log_path = $OPLOG/dovecot.log
ssl = required
ssl_cert = <$PKI/operator.pem
ssl_key = <$PKI/operator.key
ssl_ca = <$PKI/ca.pem
ssl_min_protocol = TLSv1.2
ssl_cipher_list = $ECDHE_SUITES
ssl_verify_client_cert = yes
# The test PKI publishes no CRL; production operators check revocation (ECO.1.1.6).
ssl_require_crl = no
auth_ssl_require_client_cert = yes
disable_plaintext_auth = yes
auth_mechanisms = plain login
first_valid_uid = 100
mail_location = maildir:$MAIL/%Ld/%Ln
mail_uid = $VMAIL
mail_gid = $VMAIL
default_login_user = dovenull
default_internal_user = dovecot
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $DV/passwd
}
# Sandbox only: any other mailbox opens with the shared sandbox password, so each test can read its own box.
passdb {
  driver = static
  args = password=$(cat "$SECRETS/sandbox-imap-password")
}
userdb {
  driver = static
  args = uid=$VMAIL gid=$VMAIL home=$MAIL/%Ld/%Ln allow_all_users=yes
}
namespace inbox {
  inbox = yes
  separator = /
  mailbox Processed {
    auto = create
  }
  mailbox Unrecognised {
    auto = create
  }
  mailbox Quarantine {
    auto = create
  }
}
service imap-login {
  inet_listener imap {
    address = $BIND
    port = $IMAP_PORT
  }
  inet_listener imaps {
    port = 0
  }
}
service imap {
  process_limit = 64
}

protocol imap {
  mail_max_userip_connections = 50
}
CONF
}

case "${1:-up}" in
  install)
    apt_install postfix dovecot-imapd dovecot-core openssl ;;
  up)
    apt_install postfix dovecot-imapd dovecot-core openssl
    id -u "$VMAIL" >/dev/null 2>&1 || { need_root "creating the $VMAIL user" "useradd --system $VMAIL"; useradd --system --no-create-home --shell /usr/sbin/nologin "$VMAIL"; }
    make_pki
    prepare_state
    if port_open "$SMTP_SUBMISSION_PORT" && port_open "$IMAP_PORT" && [ "${2:-}" != "--reconfigure" ]; then
      say "operator already up: SMTP 127.0.0.1:$SMTP_SUBMISSION_PORT (mTLS), inject :$SMTP_INJECT_PORT, IMAP :$IMAP_PORT"; exit 0
    fi
    [ "${2:-}" = "--reconfigure" ] && "$0" down
    configure_postfix; configure_dovecot
    postfix -c "$PF/etc" status >/dev/null 2>&1 && postfix -c "$PF/etc" reload >/dev/null 2>&1 || postfix -c "$PF/etc" start >/dev/null 2>&1 \
      || die "postfix did not start; see $LOG_DIR/postfix.log"
    if [ -f "$DV/run/master.pid" ] && kill -0 "$(cat "$DV/run/master.pid")" 2>/dev/null; then doveadm -c "$DV/dovecot.conf" reload; else dovecot -c "$DV/dovecot.conf" </dev/null >/dev/null 2>&1; fi
    wait_port "$SMTP_SUBMISSION_PORT" postfix 20 "$LOG_DIR/postfix.log"
    wait_port "$IMAP_PORT" dovecot 20 "$LOG_DIR/dovecot.log"
    say "operator up: SMTP submission 127.0.0.1:$SMTP_SUBMISSION_PORT (STARTTLS + client cert), inject :$SMTP_INJECT_PORT, IMAP :$IMAP_PORT; PKI in $PKI"
    ;;
  down)
    [ -f "$PF/etc/main.cf" ] && postfix -c "$PF/etc" status >/dev/null 2>&1 && { postfix -c "$PF/etc" stop >/dev/null 2>&1; say "postfix stopped"; }
    if [ -f "$DV/run/master.pid" ] && kill -0 "$(cat "$DV/run/master.pid")" 2>/dev/null; then doveadm -c "$DV/dovecot.conf" stop; say "dovecot stopped"; fi
    ;;
  status)
    port_open "$SMTP_SUBMISSION_PORT" && port_open "$IMAP_PORT" && say "operator up" || { say "operator down"; exit 1; } ;;
  *) die "usage: operator.sh [install|up [--reconfigure]|down|status]" ;;
esac
