/**
 * Every refusal, failure and dead-letter reason of the gateway, each with one stable code (`MSSGW_…`), named once here
 * with its meaning and what to do. docs/errors.md is generated from this table (`npm run errors-doc`), and
 * test/unit/errors.test.ts checks both ways that the table and the places that emit the reasons name the same ones.
 *
 * Where a reason travels, it keeps the form it has always had there (`value`): the HL7 reason code in ERR-5 (table
 * 99MSSGW) and the Kafka dead-letter header `mssgw-reason`, a recipient's `reason`, a metric's `reason` label, the
 * API's `error` field, an exception's `code`. The stable code names it in documents, tickets and dashboards; producers
 * and scripts that read the value keep working.
 */

export type ErrorFamily = 'intake' | 'recipient' | 'delivery' | 'mailbox' | 'receipt' | 'quarantine' | 'store' | 'api';

export interface ErrorEntry {
  family: ErrorFamily;
  /** The reason as the gateway writes it where it shows (see ERROR_FAMILIES); the code itself when it is an MSSGW_ code. */
  value: string;
  meaning: string;
  remedy: string;
}

/** Where each family's reasons show, and what it ends in. */
export const ERROR_FAMILIES: Record<ErrorFamily, { title: string; where: string }> = {
  intake: {
    title: 'Results refused at intake',
    where: 'The NACK\'s ERR segment: ERR-5 holds the value (table 99MSSGW), ERR-3 its HL7 table 0357 condition, MSA-1 `AE` or `AR`; a Kafka record refused goes to the dead-letter topic with the value in its `mssgw-reason` header; `mssgw parse` prints it; the intake\'s log line carries it as `reasonCode`. Some are warnings under `intake.tolerance` (`AA` with an ERR of severity W).',
  },
  recipient: {
    title: 'Recipients refused',
    where: 'A recipient record in state `refused` with the value as its `reason` (status API, status events, ZAM^Z02 `N`, the console), counted in `mssgw_recipients_refused_total{reason}`; refused again at dispatch or replay also in `mssgw_dispatch_refused_total{reason}` (docs/recipients.md).',
  },
  delivery: {
    title: 'Deliveries that end without a DSN',
    where: 'The recipient\'s `reason` in state `dead-lettered` or `unconfirmed` (status API, status events, ZAM^Z02 `N`); a dead letter is also listed by `mssgw dlq list` with the last error.',
  },
  mailbox: {
    title: 'Mailboxes paused',
    where: 'The `reason` label of `mssgw_mailbox_paused{mailbox,reason}` (1 while paused; alert `MssgwMailboxPaused`) and the dispatcher\'s log line `mailbox paused` (`pause`). No recipient is failed: the mailbox\'s send queue waits and resumes by itself.',
  },
  receipt: {
    title: 'Receipts not believed',
    where: 'A history entry of the recipient named, `applied: false`, detail `forged: <value>; …`; the `reason` label of `mssgw_receipts_forged_total` (alert `MssgwReceiptsForged`); the log line `receipt not believed`.',
  },
  quarantine: {
    title: 'Mails quarantined by the receipts reader',
    where: 'The mail is moved unread to the mailbox\'s `Quarantine` folder; the `reason` label of `mssgw_receipts_quarantined_total` (alert `MssgwReceiptsQuarantined`); the log line `mail quarantined`.',
  },
  store: {
    title: 'Message store (PostgreSQL)',
    where: 'The `code` of the error the process stops with, or logs; the value is the code.',
  },
  api: {
    title: 'HTTP API',
    where: 'The `error` field of the JSON answer (`{"error": "<value>", "reason": "…"}`), with the HTTP status; refusals of access are written to the audit trail.',
  },
};

const intake = (value: string, meaning: string, remedy: string): ErrorEntry => ({ family: 'intake', value, meaning, remedy });
const recipient = (value: string, meaning: string, remedy: string): ErrorEntry => ({ family: 'recipient', value, meaning, remedy });

export const ERRORS = {
  // Intake: libs/hl7/src/errors.ts, Reason (ERR-5, table 99MSSGW).
  MSSGW_INTAKE_NOT_HL7: intake('NOT_HL7', 'The frame is not an HL7 v2 message: it does not begin with MSH and its delimiters.', 'Fix what the producer (or its interface engine) sends on this connection; the same bytes are refused again.'),
  MSSGW_INTAKE_MSH10_MISSING: intake('MSH10_MISSING', 'MSH-10 (message control id) is empty.', 'The producer must fill MSH-10: the gateway keys results and their ACKs on it.'),
  MSSGW_INTAKE_VERSION_UNSUPPORTED: intake('VERSION_UNSUPPORTED', 'MSH-12 names an HL7 version outside 2.3 to 2.8.', 'Configure the producer\'s interface for HL7 2.5 (CI-SIS) or another version from 2.3 to 2.8.'),
  MSSGW_INTAKE_NOT_A_RESULT: intake('NOT_A_RESULT', 'The message is not a result (ORU or MDM): an ACK, a ZAM, an ADT…', 'Route only results to the gateway; its ZAM feedback goes the other way.'),
  MSSGW_INTAKE_EVENT_UNSUPPORTED: intake('EVENT_UNSUPPORTED', 'A result of another event than ORU^R01, MDM^T02, MDM^T10 or MDM^T04.', 'Send initial results, replacements and deletions with those events.'),
  MSSGW_INTAKE_PID_MISSING: intake('PID_MISSING', 'The result has no PID segment.', 'The producer must send the patient\'s PID segment.'),
  MSSGW_INTAKE_NO_REPORT: intake('NO_REPORT', 'The result carries no report: no ED document, no TX/FT text, no structured value.', 'Check the producer\'s mapping: a result without a report is never sent.'),
  MSSGW_INTAKE_ED_BASE64: intake('ED_BASE64', 'An OBX-5 ED document declared Base64 is not complete, padded Base64: a report cut short, or a placeholder.', 'Fix the encoding at the producer, and look for a field length limit in the interface engine that cuts reports.'),
  MSSGW_INTAKE_ED_ENCODING: intake('ED_ENCODING', 'OBX-5.4 (the ED encoding) is neither Base64, A nor empty.', 'Send the document in Base64.'),
  MSSGW_INTAKE_ED_EMPTY: intake('ED_EMPTY', 'An ED OBX holds no data, and no other OBX carries the report.', 'Check that the producer attaches the document.'),
  MSSGW_INTAKE_CORPSMAIL_BASE64: intake('CORPSMAIL_BASE64', 'CORPSMAIL_PS / CORPSMAIL_PATIENT is not complete, padded Base64.', 'Fix the mail body\'s encoding at the producer; with `intake.tolerance.<source>.mailBody: warn` (the default) the result is taken with the default body.'),
  MSSGW_INTAKE_CORPSMAIL_ENCODING: intake('CORPSMAIL_ENCODING', 'CORPSMAIL_PS / CORPSMAIL_PATIENT is not ED encoded Base64, A or empty.', 'As for MSSGW_INTAKE_CORPSMAIL_BASE64.'),
  MSSGW_INTAKE_CORPSMAIL_NOT_TEXT: intake('CORPSMAIL_NOT_TEXT', 'The mail body decodes to bytes that are not text (UTF-8, or the charset of MSH-18).', 'Send the body as text in the charset MSH-18 declares.'),
  MSSGW_INTAKE_ORC1_VALUE: intake('ORC1_VALUE', 'ORC-1 of a CI-SIS ORU is not NW, RO or CA.', 'Send NW (initial), RO (replacement) or CA (deletion).'),
  MSSGW_INTAKE_ACTION_MISMATCH: intake('ACTION_MISMATCH', 'ORC-1, OBX-11 and the MDM event give different actions (NW/F/T02, RO/C/T10, CA/D/T04).', 'Fix the producer\'s mapping so that they agree.'),
  MSSGW_INTAKE_FLAG_VALUE: intake('FLAG_VALUE', 'A MetaDMPMSS flag is neither Y nor N.', 'Send Y or N.'),
  MSSGW_INTAKE_FLAG_MISSING: intake('FLAG_MISSING', 'A CI-SIS result lacks one of the eight required MetaDMPMSS flags.', 'Send all eight flags of the volet.'),
  MSSGW_INTAKE_FLAG_ORDER: intake('FLAG_ORDER', 'The required MetaDMPMSS flags are not in the order of the volet.', 'Send them in the volet\'s order.'),
  MSSGW_INTAKE_FLAG_COMBINATION: intake('FLAG_COMBINATION', 'The MetaDMPMSS flags form no combination of the volet\'s MSSanté table (e.g. DESTMSSANTEPS=Y with DESTMSSANTEPAT=N and no INVISIBLE_PATIENT=Y).', 'Fix the flags at the producer, or set `intake.tolerance.<source>.flagMatrix: lenient` for a producer that cannot.'),
  MSSGW_INTAKE_TOO_LARGE: intake('TOO_LARGE', 'The frame is larger than the listener\'s `maxMessageBytes`.', 'Raise `mllp.listeners[].maxMessageBytes` (and the intake\'s memory with it), or have the producer send smaller documents.'),
  MSSGW_INTAKE_ENVELOPE_INVALID: intake('ENVELOPE_INVALID', 'A Kafka record is neither HL7 (ER7) text nor a valid `mssgw.result.v1` JSON envelope.', 'Fix the producer; the record is in the dead-letter topic with its source topic, partition and offset.'),
  MSSGW_INTAKE_SOURCE_UNKNOWN: intake('SOURCE_UNKNOWN', 'A Kafka envelope names a `source` the configuration does not.', 'Name the source in the configuration (a mailbox\'s `sources`, `routing.sources`…) or fix the envelope, then send the record again from the dead-letter topic.'),
  MSSGW_INTAKE_QUEUE_UNAVAILABLE: intake('QUEUE_UNAVAILABLE', 'PostgreSQL or Redis did not confirm the result within 5 s: it is not taken (`AE`).', 'Nothing, if the producer resends on AE (it should); else restore PostgreSQL or Redis and resend.'),
  MSSGW_INTAKE_RETRIES_EXHAUSTED: intake('RETRIES_EXHAUSTED', 'A Kafka record failed 5 times while the message store and the queue answered: dead-lettered so that its partition moves on.', 'Read the last error in the record\'s `mssgw-error` header and the intake\'s log; fix, then send it again from the dead-letter topic.'),

  // Recipients refused: libs/routing (RefusalReason), libs/lifecycle (REASONS, DISPATCH_REFUSALS).
  MSSGW_RECIPIENT_NO_MAILBOX: recipient('no-mailbox', 'The practitioner has no MSSanté mailbox in the directory, and the source no default mailbox.', 'Check the practitioner\'s RPPS in the Annuaire Santé; a practitioner without a mailbox cannot be reached by MSSanté.'),
  MSSGW_RECIPIENT_NOT_WHITELISTED: recipient('not-whitelisted', 'The address\'s domain (or every directory mailbox of the practitioner) is outside the MSSanté liste blanche, at routing, or since routing when checked again at dispatch or replay.', 'Nothing to fix in the gateway: the domain is not an MSSanté domain. Check `mssante.whitelist` is fresh (alert MssgwReferenceDataStale).'),
  MSSGW_RECIPIENT_INVALID_ADDRESS: recipient('invalid-address', 'PRT-15 is not an e-mail address.', 'Fix the address at the producer.'),
  MSSGW_RECIPIENT_INS_NOT_QUALIFIED: recipient('ins-not-qualified', 'The patient\'s INS is not qualified (PID-32 is not VALI) or not of the NIR range: no mail to the patient.', 'Qualify the patient\'s identity (INSi) in the producer\'s system.'),
  MSSGW_RECIPIENT_INS_MISSING: recipient('ins-missing', 'PID-3 carries no INS: no mail to the patient.', 'As for MSSGW_RECIPIENT_INS_NOT_QUALIFIED.'),
  MSSGW_RECIPIENT_TEST_INS_IN_PRODUCTION: recipient('test-ins-in-production', 'An INS of a test range (OID .10, .11) in production.', 'A test patient reached production: find where.'),
  MSSGW_RECIPIENT_PATIENT_ADDRESS_MISMATCH: recipient('patient-address-mismatch', 'The patient address is not `<INS of PID-3>@patient.mssante.fr`.', 'Fix the producer: the patient\'s address is built from the INS.'),
  MSSGW_RECIPIENT_PATIENT_OPPOSITION: recipient('patient-opposition', 'The patient opposes mails to the patient (at routing, or recorded since and checked at dispatch or replay).', 'Nothing: the patient\'s choice (docs/recipients.md, Opposition).'),
  MSSGW_RECIPIENT_PROFESSIONALS_OPPOSITION: recipient('professionals-opposition', 'The patient opposes mails about them to professionals: every practitioner, organisation or application recipient.', 'Nothing: the patient\'s choice.'),
  MSSGW_RECIPIENT_INVISIBLE_TO_PATIENT: recipient('invisible-to-patient', 'The MetaDMPMSS flags make the result invisible to the patient.', 'Nothing, unless the producer\'s flags are wrong.'),
  MSSGW_RECIPIENT_MASKED_TO_PROFESSIONALS: recipient('masked-to-professionals', 'MASQUE_PS is Y: the result is masked to professionals.', 'Nothing, unless the producer\'s flags are wrong.'),
  MSSGW_RECIPIENT_NOT_REQUESTED_BY_PRODUCER: recipient('not-requested-by-producer', 'DESTMSSANTEPS or DESTMSSANTEPAT is N for this kind of recipient.', 'Nothing, unless the producer\'s flags are wrong.'),
  MSSGW_RECIPIENT_ROLE_NOT_SERVED: recipient('role-not-served', 'A PRT RCT of a role the source is configured not to serve.', 'Add the role to `routing.sources.<source>.roles` if it should be served.'),
  MSSGW_RECIPIENT_TOO_LARGE: recipient('too-large', 'The mail would exceed 25 MB for a patient, or `routing.maxMailBytes` for the operator.', 'Send smaller documents (compress the PDF), or raise `routing.maxMailBytes` to what the operator accepts.'),
  MSSGW_ROUTING_FAILED: recipient('routing-failed', 'Routing failed on every attempt (`routing.attempts`; e.g. the directory stayed unavailable): the result\'s outcome is this refusal, nothing was sent.', 'Read the router\'s log (`routing failed`), fix the cause, then have the producer send the result again. Alert MssgwRoutingFailed.'),

  // Deliveries: libs/lifecycle (REASONS).
  MSSGW_DELIVERY_RETRIES_EXHAUSTED: { family: 'delivery', value: 'retries-exhausted', meaning: 'Every attempt failed transiently (4xx, timeouts, connections cut) for `dispatcher.retryBudgetMs` (24 h): dead-lettered.', remedy: '`mssgw dlq list` gives the last error; once the cause is fixed, `mssgw dlq replay`. Alert MssgwDeadLetterGrowing.' },
  MSSGW_DELIVERY_NO_FINAL_DSN: { family: 'delivery', value: 'no-final-dsn', meaning: 'Accepted by the operator, and no final DSN came within `receipts.confirmationTimeoutMs`: `unconfirmed`.', remedy: 'Check the receipts reader (IMAP) and whether the recipient\'s operator sends DSNs (`mssgw_operator_dsn_supported`); the mail may well have arrived.' },

  // Mailboxes paused: libs/lifecycle/src/triggers.ts, MAILBOX_PAUSES.
  MSSGW_MAILBOX_UNREACHABLE: { family: 'mailbox', value: 'unreachable', meaning: 'The operator refuses or drops the connection before anything is sent (refused, DNS, unreachable, timeout at connect).', remedy: 'Wait, or check the network and the operator\'s status page; sending resumes by itself.' },
  MSSGW_MAILBOX_AUTHENTICATION: { family: 'mailbox', value: 'authentication', meaning: 'The operator refuses the mailbox\'s login: 530, 534, 535, 538, or EAUTH.', remedy: 'Fix the mailbox\'s credentials (SASL login, its password file).' },
  MSSGW_MAILBOX_CERTIFICATE: { family: 'mailbox', value: 'certificate', meaning: 'The TLS handshake fails: the mailbox\'s certificate refused, or the operator\'s not trusted.', remedy: 'Renew or fix the mailbox certificate, or `operator.caFile` (the IGC-Santé chain).' },
  MSSGW_MAILBOX_SENDER_REFUSED: { family: 'mailbox', value: 'sender-refused', meaning: 'A 5xx to MAIL FROM: the operator does not take this mailbox as sender.', remedy: 'Check the mailbox\'s address and its rights with the operator.' },
  MSSGW_MAILBOX_MESSAGE_STORE: { family: 'mailbox', value: 'message-store', meaning: 'PostgreSQL does not answer the dispatcher.', remedy: 'Restore the database; the queue waits for it.' },

  // Receipts not believed: libs/lifecycle, FORGED_RECEIPT_REASONS.
  MSSGW_RECEIPT_ENVELOPE_RECIPIENT: { family: 'receipt', value: 'envelope-recipient', meaning: 'A DSN whose ENVID is a delivery\'s reports on another address than that delivery\'s.', remedy: 'Nothing was applied. A series is someone trying to mark others\' results: give the mails (folder Processed) to the operator\'s abuse desk.' },
  MSSGW_RECEIPT_ENVELOPE_UNKNOWN: { family: 'receipt', value: 'envelope-unknown', meaning: 'A DSN whose ENVID is no delivery\'s (guessed or made up), and the Message-ID fallback did not hold.', remedy: 'As for MSSGW_RECEIPT_ENVELOPE_RECIPIENT.' },
  MSSGW_RECEIPT_NOT_FROM_OPERATOR: { family: 'receipt', value: 'not-from-operator', meaning: 'A DSN without a known ENVID, naming our mails, not written by the operator\'s reporting MTA.', remedy: 'If the operator\'s MTA signs its DSNs under another name than its TLS name, set `operator.reportingMtas`; else as for MSSGW_RECEIPT_ENVELOPE_RECIPIENT.' },
  MSSGW_RECEIPT_MDN_SENDER: { family: 'receipt', value: 'mdn-sender', meaning: 'An MDN whose sender is not the recipient it reports on.', remedy: 'Now and then: a recipient\'s mail client sending from an alias. A series: as for MSSGW_RECEIPT_ENVELOPE_RECIPIENT.' },

  // Quarantine: libs/receipts, QUARANTINE_REASONS.
  MSSGW_QUARANTINE_TOO_LARGE: { family: 'quarantine', value: 'too-large', meaning: 'A mail over `receipts.maxMailBytes`, never fetched.', remedy: 'A receipt after all (a DSN returning the whole mail): raise the limit and move it back to INBOX. Anything else: delete it.' },
  MSSGW_QUARANTINE_TOO_MANY_PARTS: { family: 'quarantine', value: 'too-many-parts', meaning: 'More MIME parts than `receipts.maxMimeParts`.', remedy: 'As for MSSGW_QUARANTINE_TOO_LARGE, with `receipts.maxMimeParts`.' },
  MSSGW_QUARANTINE_TOO_DEEP: { family: 'quarantine', value: 'too-deep', meaning: 'MIME nesting deeper than `receipts.maxNestingDepth`.', remedy: 'As for MSSGW_QUARANTINE_TOO_LARGE, with `receipts.maxNestingDepth`.' },
  MSSGW_QUARANTINE_INVALID_MIME: { family: 'quarantine', value: 'invalid-mime', meaning: 'A mail with no header.', remedy: 'Delete it: nothing in the gateway waits for it.' },
  MSSGW_QUARANTINE_UNREADABLE: { family: 'quarantine', value: 'unreadable', meaning: 'The MIME parser gave up (e.g. a header block over 1 MB).', remedy: 'Delete it, or give it to the operator if it should have been a receipt.' },
  MSSGW_QUARANTINE_UNRECORDABLE: { family: 'quarantine', value: 'unrecordable', meaning: 'Its recording failed three times while the status store answered.', remedy: 'Read the receipts log for the error (a bug to report); move it back to INBOX once fixed.' },

  // Message store: libs/store.
  MSSGW_STORE_UNAVAILABLE: { family: 'store', value: 'MSSGW_STORE_UNAVAILABLE', meaning: 'PostgreSQL is unreachable or refuses the connection: a process stops at start (exit 1); during a run the intake answers AE until it is back.', remedy: 'Check `postgres.url`, the password, TLS (`postgres.caFile`) and the server.' },
  MSSGW_MIGRATION_PENDING: { family: 'store', value: 'MSSGW_MIGRATION_PENDING', meaning: 'The message store lacks migrations and `postgres.migrateOnStart` is off: the process does not start.', remedy: 'Run `mssgw migrate`.' },
  MSSGW_MIGRATION_UNKNOWN: { family: 'store', value: 'MSSGW_MIGRATION_UNKNOWN', meaning: 'The database has a migration this version does not know: a newer version ran on it.', remedy: 'Run the newer version (never an older one on a newer schema).' },
  MSSGW_MIGRATION_CHANGED: { family: 'store', value: 'MSSGW_MIGRATION_CHANGED', meaning: 'A migration applied to the database was changed afterwards (its checksum differs).', remedy: 'Run the release that applied it; a migration is never edited once released.' },
  MSSGW_SEARCH_TIMEOUT: { family: 'store', value: 'MSSGW_SEARCH_TIMEOUT', meaning: 'A search of results took longer than its time limit (the API answers 503 `timeout`).', remedy: 'Add a filter or narrow the dates.' },

  // HTTP API: services/api (the `error` field).
  MSSGW_API_BAD_REQUEST: { family: 'api', value: 'bad-request', meaning: 'HTTP 400: a parameter or body the route does not take (the reason names it, never its value).', remedy: 'Fix the request (docs/api.md).' },
  MSSGW_API_UNAUTHORIZED: { family: 'api', value: 'unauthorized', meaning: 'HTTP 401: no credential, or one that is not valid (an unknown or revoked API key, a token that does not verify).', remedy: 'Send a valid API key or OIDC token.' },
  MSSGW_API_FORBIDDEN: { family: 'api', value: 'forbidden', meaning: 'HTTP 403: the caller\'s role does not allow the route (viewer, operator, admin).', remedy: 'Use a key or token with the role the route needs.' },
  MSSGW_API_NOT_FOUND: { family: 'api', value: 'not-found', meaning: 'HTTP 404: no such route, or no such result, mail, delivery, key or document (or no longer kept).', remedy: 'Check the id; records stay `receipts.retentionDays` from their reception (longer while a recipient is not final).' },
  MSSGW_API_METHOD_NOT_ALLOWED: { family: 'api', value: 'method-not-allowed', meaning: 'HTTP 405.', remedy: 'Use the method the route takes.' },
  MSSGW_API_NOT_ACCEPTABLE: { family: 'api', value: 'not-acceptable', meaning: 'HTTP 406.', remedy: 'Accept application/json.' },
  MSSGW_API_TOO_LARGE: { family: 'api', value: 'too-large', meaning: 'HTTP 413: the request body is too large.', remedy: 'Send a smaller body.' },
  MSSGW_API_UNSUPPORTED_MEDIA_TYPE: { family: 'api', value: 'unsupported-media-type', meaning: 'HTTP 415.', remedy: 'Send application/json.' },
  MSSGW_API_MISDIRECTED: { family: 'api', value: 'misdirected', meaning: 'HTTP 421: the Host is not one this server answers for (`api.allowedHosts`).', remedy: 'Call the gateway by its configured name, or add it to `api.allowedHosts`.' },
  MSSGW_API_REFUSED: { family: 'api', value: 'refused', meaning: 'HTTP 409: the action would break a rule: a replay of a recipient now refused (not-whitelisted, an opposition), a message to a patient who opposes it.', remedy: 'The reason says which rule; nothing to retry.' },
  MSSGW_RATE_LIMITED: { family: 'api', value: 'rate-limited', meaning: 'HTTP 429: the caller exceeded `api.rateLimit` (counted per caller across the api replicas); the reason says when to retry.', remedy: 'Retry later, or raise `api.rateLimit` for a legitimate client.' },
  MSSGW_API_TIMEOUT: { family: 'api', value: 'timeout', meaning: 'HTTP 503: the search took too long (MSSGW_SEARCH_TIMEOUT).', remedy: 'Add a filter or narrow the dates.' },
  MSSGW_API_UNAVAILABLE: { family: 'api', value: 'unavailable', meaning: 'HTTP 503: what the answer depends on does not answer (the identity provider, the credential store, the audit trail, which must be written before anything is shown).', remedy: 'Check PostgreSQL and the identity provider; retry.' },
  MSSGW_API_INTERNAL: { family: 'api', value: 'internal', meaning: 'HTTP 500: an unexpected error; the answer gives the request id, the log has the cause.', remedy: 'Find the request id in the api\'s log; report it if it is a bug.' },
} as const satisfies Record<`MSSGW_${string}`, ErrorEntry>;

export type ErrorCode = keyof typeof ERRORS;

/** The stable code of a reason as one family writes it (e.g. `codeOf('recipient', 'not-whitelisted')`), or undefined. */
export function codeOf(family: ErrorFamily, value: string): ErrorCode | undefined {
  return (Object.keys(ERRORS) as ErrorCode[]).find((c) => ERRORS[c].family === family && ERRORS[c].value === value);
}
