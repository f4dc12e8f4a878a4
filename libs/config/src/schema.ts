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

/** How strictly one source's results are read at intake; a setting left out keeps its default. */
const IntakeTolerance = z
  .object({
    mailBody: z
      .enum(['warn', 'reject'])
      .default('warn')
      .describe(
        'A CORPSMAIL_PS / CORPSMAIL_PATIENT body that cannot be read (Base64 cut short or invalid, bytes that are not text). ' +
          '"warn": the result is taken, the mail carries the default body, the ACK is AA with an ERR segment of severity W ' +
          '(CORPSMAIL_BASE64, CORPSMAIL_NOT_TEXT, CORPSMAIL_ENCODING). "reject": the result is refused with AE.',
      ),
    flagMatrix: z
      .enum(['strict', 'lenient'])
      .default('strict')
      .describe(
        "MetaDMPMSS flags in a combination the volet's MSSanté table does not list. \"strict\": refused with AE (FLAG_COMBINATION). " +
          '"lenient", for a producer that cannot be fixed quickly: only the audiences the flags let see the document keep it, ' +
          'none is added (professionals when DESTMSSANTEPS=Y and MASQUE_PS=N; the patient when DESTMSSANTEPAT=Y and ' +
          'INVISIBLE_PATIENT, INVISIBLE_REP_LEGAUX and CONNEXION_SECRETE are N); the ACK is AA with an ERR of severity W ' +
          '(FLAG_COMBINATION) naming the combination and who receives it; refused when nobody is left.',
      ),
  })
  .strict();
export type IntakeToleranceConfig = z.infer<typeof IntakeTolerance>;

const oid = z.string().regex(/^[0-2](\.(0|[1-9]\d*))+$/, 'expected an OID such as 1.2.250.1.999.1');
const XdsCodeConfig = z.object({ code: z.string().min(1), displayName: z.string().min(1) }).strict();
const domainName = z.string().regex(/^([a-z0-9-]+\.)+[a-z0-9-]{2,}$/i, 'expected a domain name');

/** Who may be sent a result: PRT RCT recipients, ordering and copied practitioners, the reader, the patient. */
const RecipientRole = z.enum(['recipient', 'ordering', 'copy', 'interpreter', 'patient']);
export type RecipientRole = z.infer<typeof RecipientRole>;

const SourceRouting = z
  .object({
    /** Roles served per result type; a type left out uses the defaults (PRT RCT for CI-SIS, ordering + copies for raw). */
    roles: z.object({ lab: z.array(RecipientRole), imaging: z.array(RecipientRole), other: z.array(RecipientRole) }).partial().strict(),
    /** Kind of result when the document code does not say (LOINC 11502-2 lab, 18748-4 imaging). */
    resultType: z.enum(['lab', 'imaging', 'other']).optional(),
    /** Organisational mailbox that receives a practitioner's copy when the directory has no mailbox for them. */
    defaultMailbox: mailAddress.optional(),
    /** Structures of the sending site (FINESS, national structure ids): their mailboxes are preferred. */
    siteStructureIds: z.array(z.string().min(1)),
  })
  .strict();
export type SourceRouting = z.infer<typeof SourceRouting>;

const ApplicativeMailbox = z
  .object({
    /** The BAL applicative address, used as From and as the DSN return path. */
    address: mailAddress,
    displayName: z.string().optional(),
    /** Sources whose results leave from this mailbox. */
    sources: z.array(z.string()).min(1),
    /** IGC-Santé ORG AUTH_CLI certificate and key of the mailbox: PEM files, or one PKCS#12 file and its passphrase. */
    certFile: filePath.optional(),
    keyFile: filePath.optional(),
    pfxFile: filePath.optional(),
    pfxPassphrase: SecretRef.optional(),
    imapPassword: SecretRef,
    /** For operator.smtpAuth "login": the SASL user (default: the address) and password. */
    smtpUser: z.string().min(1).optional(),
    smtpPassword: SecretRef.optional(),
  })
  .strict()
  .refine((m) => (m.pfxFile ? !m.certFile && !m.keyFile : Boolean(m.certFile && m.keyFile)), {
    message: 'give certFile and keyFile (PEM), or pfxFile (PKCS#12), not both',
  });

export const GatewayConfigSchema = z
  .object({
    /** "production" refuses test INS OIDs and test domains; "test" and "demo" accept them on purpose. */
    environment: z.enum(['production', 'test', 'demo']),
    redis: z
      .object({
        url: z.string().regex(/^rediss?:\/\//, 'expected a redis:// URL'),
        prefix: z.string().min(1),
        /** High availability: the Sentinels that name the master (the URL then gives only credentials and db). */
        sentinel: z
          .object({ masterName: z.string().min(1), nodes: z.array(z.string().regex(/^[^:]+:\d+$/, 'expected host:port')).min(1), password: SecretRef.optional() })
          .strict()
          .optional(),
      })
      .strict(),
    kafka: z
      .object({
        enabled: z.boolean(),
        brokers: z.array(z.string().regex(/^[^:]+:\d+$/, 'expected host:port')).min(1),
        clientId: z.string().min(1),
        groupId: z.string().min(1),
        intakeTopics: z.array(z.string().min(1)),
        deadLetterTopic: z.string().min(1),
        statusTopic: z.string().min(1),
        /** Partitions whose batches are queued at the same time (kafkajs processes one at a time by default). */
        partitionsConcurrently: z.number().int().min(1).max(64),
        /** Upper bound of one fetch per partition. Larger batches mean fewer commits, but more results held at once. */
        maxBytesPerPartition: z.number().int().min(64 * 1024),
        /** TLS to the brokers, checked against this CA; mutual TLS when a client certificate and key are given. */
        tls: z
          .object({ caFile: filePath, certFile: filePath.optional(), keyFile: filePath.optional(), serverName: hostname.optional() })
          .strict()
          .refine((t) => Boolean(t.certFile) === Boolean(t.keyFile), { message: 'give both certFile and keyFile, or neither' })
          .optional(),
        /** SASL authentication (over TLS only). */
        sasl: z
          .object({ mechanism: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']), username: z.string().min(1), password: SecretRef })
          .strict()
          .optional(),
      })
      .strict()
      // Results are health data and a SASL password is a credential: neither crosses the network in clear.
      .refine((k) => !k.sasl || k.tls, { message: 'kafka.sasl needs kafka.tls: a SASL password is never sent in clear', path: ['sasl'] }),
    http: z.object({ host: hostname, port: z.number().int().min(0).max(65535) }).strict(),
    mllp: z.object({ listeners: z.array(MllpListener) }).strict(),
    intake: z
      .object({
        tolerance: z
          .record(z.string().min(1), IntakeTolerance)
          .describe(
            'Per source (an MLLP listener\'s source, a Kafka envelope\'s source or topic name): how strictly its results are read. ' +
              'A source left out reads with mailBody "warn" and flagMatrix "strict".',
          ),
      })
      .strict()
      .describe('What the intake tolerates in the results it receives.'),
    operator: z
      .object({
        smtpHost: hostname,
        smtpPort: port,
        /** true: implicit TLS (465); false: STARTTLS, required. */
        smtpImplicitTls: z.boolean(),
        /** Benchmarks against a plain SMTP sink only: no TLS at all. Refused in production. */
        insecurePlaintext: z.boolean(),
        /** SASL after TLS: none (the client certificate is enough), EXTERNAL (identity from the certificate), or LOGIN. */
        smtpAuth: z.enum(['none', 'external', 'login']),
        imapHost: hostname,
        imapPort: port,
        imapImplicitTls: z.boolean(),
        /** CA bundle that signs the operator's server certificate (IGC-Santé in production). */
        caFile: filePath,
        /** Name checked against the operator's certificate. */
        tlsServerName: hostname,
        maxConnections: z.number().int().min(1).max(100),
        maxMessagesPerConnection: z.number().int().min(1),
        /**
         * Sending rate towards the operator, shared by all dispatcher processes: at most maxPerSecond; on 421/450/451/452
         * it is multiplied by slowDownFactor (not below minPerSecond), and grows back after recoveryMs without one.
         */
        rate: z
          .object({
            maxPerSecond: z.number().positive(),
            minPerSecond: z.number().positive(),
            slowDownFactor: z.number().gt(0).lt(1),
            recoveryMs: z.number().int().positive(),
            burst: z.number().int().min(1),
          })
          .strict(),
      })
      .strict(),
    mailboxes: z.array(ApplicativeMailbox).min(1),
    mssante: z
      .object({
        /** X-MSS-NIL: the product reference obtained when declaring the software (ECO.2.4.3). */
        productReference: z.string().min(1),
        /** The liste blanche: no mail is ever addressed to a domain outside it (patient.mssante.fr aside). */
        whitelist: z
          .object({
            /** File or https URL of listeblanchemssante.xml; required in production. */
            location: z.string().min(1).optional(),
            /** Expected SHA-256 (hex), or the URL of the published checksum file. */
            sha256: z.string().regex(/^[0-9a-fA-F]{64}$/, 'expected 64 hex digits').optional(),
            checksumUrl: z.string().url().optional(),
            refreshIntervalMs: z.number().int().min(60_000),
          })
          .strict(),
        /** Test domains accepted on purpose, outside the liste blanche; refused in production. */
        testDomains: z.array(domainName),
        /**
         * Mail bodies used when the producer sends no CORPSMAIL_PS / CORPSMAIL_PATIENT, per audience and action; "{label}"
         * is replaced by the document's label. Any left out keep the built-in French texts.
         */
        bodies: z
          .object({
            professional: z.object({ initial: z.string(), replace: z.string(), delete: z.string() }).partial().strict(),
            patient: z.object({ initial: z.string(), replace: z.string(), delete: z.string() }).partial().strict(),
          })
          .partial()
          .strict()
          .optional(),
        /** What the gateway writes into the CDA documents it wraps and the XDM metadata it builds. */
        documents: z
          .object({
            /** OID under which the gateway issues the ids of the CDA documents it wraps (a set id arc is derived). */
            idRoot: oid,
            /** XDSSubmissionSet.sourceId: the OID identifying this gateway as the source of submissions. */
            sourceOid: oid,
            /** The custodian of wrapped documents: the establishment (national structure id and name). */
            custodian: z.object({ idNatStruct: z.string().min(1), name: z.string().min(1) }).strict(),
            /** XDS healthcareFacilityTypeCode (TRE_R02-SecteurActivite) and practiceSettingCode (TRE_A01-CadreExercice). */
            facilityType: XdsCodeConfig,
            practiceSetting: XdsCodeConfig,
          })
          .strict(),
      })
      .strict(),
    directory: z
      .object({
        /** The Annuaire Santé MSSanté extraction, imported at start when empty and refreshed on a schedule. */
        extraction: z
          .object({
            /** File (.zip or .txt) or https URL of Extraction_Correspondance_MSSante. */
            location: z.string().min(1),
            refreshIntervalMs: z.number().int().min(60_000),
            /** A new import with fewer mailboxes than this share of the current one is not swapped in. */
            minRatio: z.number().min(0).max(1),
          })
          .strict()
          .optional(),
        /** Live Annuaire Santé FHIR API, asked when the extraction does not know a practitioner. */
        fhir: z
          .object({
            baseUrl: z.string().url(),
            apiKey: SecretRef,
            timeoutMs: z.number().int().positive(),
            cacheTtlMs: z.number().int().nonnegative(),
            cacheSize: z.number().int().positive(),
            failureThreshold: z.number().int().min(1),
            resetMs: z.number().int().positive(),
          })
          .strict()
          .optional(),
      })
      .strict(),
    routing: z
      .object({
        /** Per source (listener or topic source name): who receives which kind of result. */
        sources: z.record(z.string(), SourceRouting),
        /** INS or IPP of patients who refused electronic sending, one per line ('#' comments). */
        patientOpposition: z.object({ file: filePath, refreshIntervalMs: z.number().int().min(1000) }).strict().optional(),
        /** Mail size limit towards patients (Mon espace santé: 25 MB) and towards professionals (the operator's). */
        maxPatientMailBytes: z.number().int().positive(),
        maxMailBytes: z.number().int().positive(),
        /** Routing attempts of a result (e.g. while the directory is unavailable), with exponential backoff from backoffMs. */
        attempts: z.number().int().min(1),
        backoffMs: z.number().int().positive(),
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
  .strict()
  .superRefine((c, ctx) => {
    for (const [i, m] of c.mailboxes.entries()) {
      if (c.operator.smtpAuth === 'login' && !m.smtpPassword) ctx.addIssue({ code: 'custom', path: ['mailboxes', i, 'smtpPassword'], message: 'operator.smtpAuth is "login": every mailbox needs its SASL password' });
    }
    if (c.environment !== 'production') return;
    if (c.operator.insecurePlaintext) {
      ctx.addIssue({ code: 'custom', path: ['operator', 'insecurePlaintext'], message: 'plaintext SMTP is refused in production' });
    }
    if (c.mssante.testDomains.length) {
      ctx.addIssue({ code: 'custom', path: ['mssante', 'testDomains'], message: 'test domains are refused in production' });
    }
    if (!c.mssante.whitelist.location) {
      ctx.addIssue({ code: 'custom', path: ['mssante', 'whitelist', 'location'], message: 'production needs the liste blanche (file or URL)' });
    }
  });

export type GatewayConfig = z.infer<typeof GatewayConfigSchema>;
export type MllpListenerConfig = z.infer<typeof MllpListener>;
export type RoutingConfig = GatewayConfig['routing'];
export type ApplicativeMailboxConfig = z.infer<typeof ApplicativeMailbox>;
