import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Every metric the gateway exports, in one place so that the Grafana dashboard and the alert rules can be checked
 * against it. Labels carry sources, mailboxes (applicative, not personal), queues, reasons and reply classes: never a
 * patient, a practitioner or a recipient address.
 */
export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: 'mssgw_' });

const latencyBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

/** When each piece of reference data in use was produced (Unix ms), read by the age gauge at scrape time. */
export const referenceData: Partial<Record<'directory' | 'whitelist' | 'patient-opposition', number>> = {};

export const metrics = {
  resultsReceived: new Counter({
    name: 'mssgw_results_received_total', help: 'Results received, per source and transport',
    labelNames: ['source', 'transport'] as const, registers: [registry],
  }),
  resultsAcknowledged: new Counter({
    name: 'mssgw_results_acknowledged_total', help: 'Results acknowledged to the producer after durable queueing (MSA AA or Kafka commit)',
    labelNames: ['source', 'transport'] as const, registers: [registry],
  }),
  resultsRejected: new Counter({
    name: 'mssgw_results_rejected_total', help: 'Results refused at intake, per source and HL7 error code (table 0357)',
    labelNames: ['source', 'transport', 'code'] as const, registers: [registry],
  }),
  sweeperRequeued: new Counter({
    name: 'mssgw_sweeper_requeued_total', help: 'Jobs the sweeper queued again because Redis no longer had them (result: routing, delivery: sending)',
    labelNames: ['kind'] as const, registers: [registry],
  }),
  resultsDuplicate: new Counter({
    name: 'mssgw_results_duplicate_total', help: 'Results acknowledged but not processed again (same sender and control id)',
    labelNames: ['source'] as const, registers: [registry],
  }),
  ackLatency: new Histogram({
    name: 'mssgw_ack_latency_seconds', help: 'From the last byte of a result to its acknowledgement',
    labelNames: ['transport'] as const, buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 5], registers: [registry],
  }),
  mllpLimit: new Counter({
    name: 'mssgw_mllp_limit_total',
    help: 'MLLP limits reached, per source and limit (connections, connections-per-peer, frame-timeout, idle-timeout: a connection refused or closed; pending-frames, connection-bytes, listener-bytes: a connection not read for a while)',
    labelNames: ['source', 'limit'] as const, registers: [registry],
  }),
  mllpConnections: new Gauge({
    name: 'mssgw_mllp_connections', help: 'Open MLLP connections, per source', labelNames: ['source'] as const, registers: [registry],
  }),
  mllpBufferedBytes: new Gauge({
    name: 'mssgw_mllp_buffered_bytes', help: 'Bytes the MLLP connections of a source hold: frames in progress and frames not yet answered',
    labelNames: ['source'] as const, registers: [registry],
  }),
  recipientsResolved: new Counter({
    name: 'mssgw_recipients_resolved_total', help: 'Recipients a result will be sent to, per kind (professional, organisation, application, patient)',
    labelNames: ['kind'] as const, registers: [registry],
  }),
  recipientsRefused: new Counter({
    name: 'mssgw_recipients_refused_total', help: 'Recipients not served, per reason (not-whitelisted, ins-not-qualified, ...)',
    labelNames: ['reason'] as const, registers: [registry],
  }),
  dispatchRefused: new Counter({
    name: 'mssgw_dispatch_refused_total',
    help: 'Recipients refused when checked again before sending or replaying (a domain that left the liste blanche, an opposition recorded since routing), per reason; also counted in mssgw_recipients_refused_total',
    labelNames: ['reason'] as const, registers: [registry],
  }),
  mailsQueued: new Counter({
    name: 'mssgw_mails_queued_total', help: 'Mails put on a send queue', labelNames: ['mailbox'] as const, registers: [registry],
  }),
  mailsSent: new Counter({
    name: 'mssgw_mails_sent_total', help: 'Mails accepted by the operator (SMTP 250)', labelNames: ['mailbox'] as const, registers: [registry],
  }),
  mailboxPaused: new Gauge({
    name: 'mssgw_mailbox_paused', help: 'A mailbox whose sending waits, no recipient failed: its operator unreachable, or refusing the mailbox itself (authentication, certificate, sender), or the message store down (1 while paused, per reason)',
    labelNames: ['mailbox', 'reason'] as const, registers: [registry],
  }),
  mailsRetried: new Counter({
    name: 'mssgw_mails_retried_total', help: 'Send attempts that failed transiently and will be retried',
    labelNames: ['mailbox', 'reply_class'] as const, registers: [registry],
  }),
  mailsFailed: new Counter({
    name: 'mssgw_mails_failed_total', help: 'Recipients refused for good by the operator or dead-lettered',
    labelNames: ['mailbox', 'reply_class'] as const, registers: [registry],
  }),
  intakeToSmtp: new Histogram({
    name: 'mssgw_intake_to_smtp_seconds', help: 'From acknowledgement of a result to SMTP acceptance of its mail',
    labelNames: ['mailbox'] as const, buckets: latencyBuckets, registers: [registry],
  }),
  smtpToDsn: new Histogram({
    name: 'mssgw_smtp_to_dsn_seconds', help: 'From SMTP acceptance to the DSN of a recipient',
    labelNames: ['mailbox'] as const, buckets: latencyBuckets, registers: [registry],
  }),
  dsnToMdn: new Histogram({
    name: 'mssgw_dsn_to_mdn_seconds', help: 'From the DSN of a recipient to its read receipt (MDN)',
    labelNames: ['mailbox'] as const, buckets: [60, 300, 900, 3600, 4 * 3600, 12 * 3600, 86400, 3 * 86400, 7 * 86400], registers: [registry],
  }),
  imapReaderLag: new Histogram({
    name: 'mssgw_imap_reader_lag_seconds', help: 'From the arrival of a mail in an applicative mailbox (IMAP INTERNALDATE) to its reading',
    labelNames: ['mailbox'] as const, buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900], registers: [registry],
  }),
  receipts: new Counter({
    name: 'mssgw_receipts_total', help: 'Receipts read from applicative mailboxes, per kind (dsn, mdn, other) and outcome',
    labelNames: ['mailbox', 'kind', 'outcome'] as const, registers: [registry],
  }),
  receiptsQuarantined: new Counter({
    name: 'mssgw_receipts_quarantined_total',
    help: 'Mails of applicative mailboxes moved to Quarantine unread, per reason (too-large, too-many-parts, too-deep, invalid-mime, unreadable, unrecordable)',
    labelNames: ['mailbox', 'reason'] as const, registers: [registry],
  }),
  receiptsForged: new Counter({
    name: 'mssgw_receipts_forged_total',
    help: 'Receipts not believed and not applied, per kind (dsn, mdn) and reason (envelope-recipient, envelope-unknown, not-from-operator, mdn-sender)',
    labelNames: ['mailbox', 'kind', 'reason'] as const, registers: [registry],
  }),
  replies: new Counter({
    name: 'mssgw_replies_total',
    help: 'Mails of applicative mailboxes that are neither DSN nor MDN (replies), per how they were matched (in-reply-to, references, sender, none)',
    labelNames: ['mailbox', 'matched'] as const, registers: [registry],
  }),
  repliesForwarded: new Counter({
    name: 'mssgw_replies_forwarded_total', help: 'Copies of replies sent to mailboxes[].forwardRepliesTo, per outcome (sent, failed: tried again at the next sweep)',
    labelNames: ['mailbox', 'outcome'] as const, registers: [registry],
  }),
  repliesForwardingBlocked: new Gauge({
    name: 'mssgw_replies_forwarding_blocked', help: '1 while a mailbox\'s forwardRepliesTo is outside the MSSanté liste blanche: its replies are kept, no copy is sent',
    labelNames: ['mailbox'] as const, registers: [registry],
  }),
  feedbackFailed: new Counter({
    name: 'mssgw_feedback_failed_total',
    help: 'Feedback to producers that failed and waits in the outbox to be tried again, per channel (zam: a ZAM over MLLP to feedback.zamEndpoints; status-topic: the Kafka status topic)',
    labelNames: ['channel'] as const, registers: [registry],
  }),
  imapConnected: new Gauge({
    name: 'mssgw_imap_connected', help: '1 while the receipts service holds an open IMAP session on the applicative mailbox (logged in, INBOX open), 0 otherwise',
    labelNames: ['mailbox'] as const, registers: [registry],
  }),
  imapLastPoll: new Gauge({
    name: 'mssgw_imap_last_poll_timestamp_seconds', help: 'When the IMAP server last answered a poll of the mailbox\'s INBOX (Unix seconds; a sweep, periodic or on IDLE news)',
    labelNames: ['mailbox'] as const, registers: [registry],
  }),
  operatorLastAccepted: new Gauge({
    name: 'mssgw_operator_last_accepted_timestamp_seconds', help: 'When the operator last accepted a mail of the mailbox (SMTP 250; Unix seconds), per dispatcher',
    labelNames: ['mailbox'] as const, registers: [registry],
  }),
  operatorDsnSupported: new Gauge({
    name: 'mssgw_operator_dsn_supported', help: '1 when the operator advertises DSN (RFC 3461) to the mailbox, 0 when tracking degrades',
    labelNames: ['mailbox'] as const, registers: [registry],
  }),
  queueJobs: new Gauge({
    name: 'mssgw_queue_jobs', help: 'Jobs per queue and state', labelNames: ['queue', 'state'] as const, registers: [registry],
  }),
  certificateExpiry: new Gauge({
    name: 'mssgw_tls_certificate_expiry_timestamp_seconds', help: 'Expiry time (Unix seconds) of each TLS certificate in use',
    labelNames: ['usage', 'subject'] as const, registers: [registry],
  }),
  operatorRate: new Gauge({
    name: 'mssgw_operator_rate_per_second', help: 'Sending rate allowed towards the operator now (lowered after 421/45x answers)',
    labelNames: ['operator'] as const, registers: [registry],
  }),
  operatorSlowDowns: new Counter({
    name: 'mssgw_operator_slowdowns_total', help: 'Operator answers asking to slow down (421, 450, 451, 452)',
    labelNames: ['operator', 'code'] as const, registers: [registry],
  }),
  kafkaPartitionsPaused: new Gauge({
    name: 'mssgw_kafka_partitions_paused', help: 'Kafka intake partitions paused because the intake queue did not take their results',
    registers: [registry],
  }),
  kafkaConsumerLag: new Gauge({
    name: 'mssgw_kafka_consumer_lag',
    help: 'Records of an intake partition not yet committed by the intake\'s consumer group: the partition\'s high-water mark minus the group\'s committed offset, read every 10 s by each intake (the same number from every intake: read with max)',
    labelNames: ['topic', 'partition'] as const, registers: [registry],
  }),
  kafkaRewinds: new Counter({
    name: 'mssgw_kafka_rewinds_total', help: 'Kafka intake partitions paused and consumed again from a result the intake queue did not take',
    labelNames: ['topic'] as const, registers: [registry],
  }),
  referenceDataAge: new Gauge({
    name: 'mssgw_reference_data_age_seconds', help: 'Age of the directory, the liste blanche and the opposition list in use',
    labelNames: ['data'] as const, registers: [registry],
    collect() {
      for (const [data, at] of Object.entries(referenceData)) if (at) this.set({ data }, (Date.now() - at) / 1000);
    },
  }),
  referenceDataEntries: new Gauge({
    name: 'mssgw_reference_data_entries', help: 'Entries in the reference data in use (mailboxes, whitelisted domains, opposed patients)',
    labelNames: ['data'] as const, registers: [registry],
  }),
  referenceDataRefreshFailures: new Counter({
    name: 'mssgw_reference_data_refresh_failures_total', help: 'Failed refreshes of reference data (the last good copy stays in use)',
    labelNames: ['data'] as const, registers: [registry],
  }),
};

/** The feedback channels; their series exist from the start (at 0), so that the alert on them has data before a failure. */
export const FEEDBACK_CHANNELS = ['zam', 'status-topic'] as const;
for (const channel of FEEDBACK_CHANNELS) metrics.feedbackFailed.inc({ channel }, 0);
// Results refused after every routing attempt (REASONS.routingFailed): at 0 from the start, for MssgwRoutingFailed.
metrics.recipientsRefused.inc({ reason: 'routing-failed' }, 0);
