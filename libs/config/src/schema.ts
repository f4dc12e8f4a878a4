import { z } from 'zod';

// Objects are strict: an unknown key (a typo, or a secret pasted inline) stops start-up instead of being ignored.
const port = z.number().int().min(1).max(65535);
const hostname = z.string().min(1);
const filePath = z.string().min(1);
const mailAddress = z.string().regex(/^[^@\s]+@[^@\s]+\.[^@\s]+$/, 'expected an e-mail address');

/** Secrets never sit in the file itself: they come from a file path or from a named environment variable. */
const SecretRef = z
  .object({ file: filePath.optional(), env: z.string().regex(/^[A-Z_][A-Z0-9_]*$/).optional() })
  .strict()
  .refine((s) => Boolean(s.file) !== Boolean(s.env), { message: 'give exactly one of "file" or "env"' });
export type SecretRef = z.infer<typeof SecretRef>;

const TlsServerOptions = z
  .object({
    certFile: filePath,
    keyFile: filePath,
    /** When set, clients must present a certificate signed by this CA (mutual TLS). */
    clientCaFile: filePath.optional(),
  })
  .strict();

const MllpListener = z
  .object({
    /** Source name recorded with every result received on this listener (e.g. "lab-sil", "ris"). */
    source: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'expected a lower-case name such as "lab-sil"'),
    host: hostname,
    port: z.number().int().min(0).max(65535),
    maxMessageBytes: z.number().int().positive(),
    idleTimeoutMs: z.number().int().positive(),
    tls: TlsServerOptions.optional(),
  })
  .strict();

const ApplicativeMailbox = z
  .object({
    /** The BAL applicative address, used as From and as the DSN return path. */
    address: mailAddress,
    displayName: z.string().optional(),
    /** Sources whose results leave from this mailbox. */
    sources: z.array(z.string()).min(1),
    /** IGC-Santé ORG AUTH_CLI certificate and key of the mailbox (PEM). */
    certFile: filePath,
    keyFile: filePath,
    imapPassword: SecretRef,
  })
  .strict();

export const GatewayConfigSchema = z
  .object({
    /** "production" refuses test INS OIDs and test domains; "test" and "demo" accept them on purpose. */
    environment: z.enum(['production', 'test', 'demo']),
    redis: z.object({ url: z.string().regex(/^rediss?:\/\//, 'expected a redis:// URL'), prefix: z.string().min(1) }).strict(),
    kafka: z
      .object({
        enabled: z.boolean(),
        brokers: z.array(z.string().regex(/^[^:]+:\d+$/, 'expected host:port')).min(1),
        clientId: z.string().min(1),
        groupId: z.string().min(1),
        intakeTopics: z.array(z.string().min(1)),
        deadLetterTopic: z.string().min(1),
        statusTopic: z.string().min(1),
      })
      .strict(),
    http: z.object({ host: hostname, port: z.number().int().min(0).max(65535) }).strict(),
    mllp: z.object({ listeners: z.array(MllpListener) }).strict(),
    operator: z
      .object({
        smtpHost: hostname,
        smtpPort: port,
        /** true: implicit TLS (465); false: STARTTLS, required. */
        smtpImplicitTls: z.boolean(),
        imapHost: hostname,
        imapPort: port,
        imapImplicitTls: z.boolean(),
        /** CA bundle that signs the operator's server certificate (IGC-Santé in production). */
        caFile: filePath,
        /** Name checked against the operator's certificate. */
        tlsServerName: hostname,
        maxConnections: z.number().int().min(1).max(100),
        maxMessagesPerConnection: z.number().int().min(1),
      })
      .strict(),
    mailboxes: z.array(ApplicativeMailbox).min(1),
    mssante: z
      .object({
        /** X-MSS-NIL: the product reference obtained when declaring the software (ECO.2.4.3). */
        productReference: z.string().min(1),
        /** Domains of the liste blanche; no mail is ever addressed elsewhere. */
        whitelistDomains: z.array(z.string().min(1)).min(1),
      })
      .strict(),
    receipts: z
      .object({
        /** Periodic sweep of the applicative mailboxes, besides IMAP IDLE. */
        sweepIntervalMs: z.number().int().positive(),
        /** A recipient with no final DSN this long after submission becomes "unconfirmed". */
        confirmationTimeoutMs: z.number().int().positive(),
        /** How long results, recipients and their histories stay in the status store after their last change. */
        retentionDays: z.number().int().min(1).max(3650),
      })
      .strict(),
    dispatcher: z
      .object({
        attempts: z.number().int().min(1),
        backoffMs: z.number().int().positive(),
        concurrency: z.number().int().min(1),
        /** A job whose worker died is taken back after this long (BullMQ lock and stalled check). */
        lockMs: z.number().int().min(1000),
        /**
         * After an interrupted attempt, how long to wait for a DSN proving the operator took the mail before sending
         * it again (the mail may have been accepted just before the crash).
         */
        reconcileMs: z.number().int().min(0),
      })
      .strict(),
    feedback: z
      .object({
        /** Where each source's producer takes its ZAM business acknowledgements over MLLP. */
        zamEndpoints: z.array(z.object({ source: z.string(), host: hostname, port, ackTimeoutMs: z.number().int().positive().optional() }).strict()),
      })
      .strict(),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  })
  .strict();

export type GatewayConfig = z.infer<typeof GatewayConfigSchema>;
export type MllpListenerConfig = z.infer<typeof MllpListener>;
export type ApplicativeMailboxConfig = z.infer<typeof ApplicativeMailbox>;
