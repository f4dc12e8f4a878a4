import { z } from 'zod';

// Objects are strict: an unknown key (a typo, or a secret pasted inline) stops start-up instead of being ignored.
// A section left out reads as {}: its defaults apply and each of its required keys is named as missing (not the section).
const ABSENT = {} as never;
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

// Every key carries its meaning in .describe(): docs/configuration.md is generated from them (npm run config-doc).
const TlsServerOptions = z
  .object({
    certFile: filePath.describe("The listener's certificate (PEM file)."),
    keyFile: filePath.describe("The listener's private key (PEM file)."),
    clientCaFile: filePath.optional().describe('When set, clients must present a certificate signed by this CA (mutual TLS).'),
  })
  .strict();

/** Per MLLP listener. The defaults fit an intake given 512 MiB (its V8 heap capped at 256 MB; frames live outside it). */
const MllpLimits = z
  .object({
    maxConnections: z.number().int().min(1).default(64).describe('Open connections on this listener; one more is closed as soon as it is accepted.'),
    maxConnectionsPerPeer: z
      .number()
      .int()
      .min(1)
      .default(16)
      .describe('Open connections from one peer address; one more is closed as soon as it is accepted.'),
    frameTimeoutMs: z
      .number()
      .int()
      .positive()
      .default(60_000)
      .describe('A frame must end within this long of its first byte, however its bytes trickle in, and a TLS handshake within this long of the connection; else the connection is closed.'),
    maxPendingFrames: z
      .number()
      .int()
      .min(1)
      .default(32)
      .describe('Frames of one connection received and not yet acknowledged (ACK not yet taken by the peer): at this many, the connection is not read until one is.'),
    maxConnectionBytes: z
      .number()
      .int()
      .positive()
      .default(32 * 1024 * 1024)
      .describe(
        'Bytes one connection holds, its frame in progress and its frames not yet acknowledged: at this, the connection is not read until its frames are answered. A lone frame is bounded by maxMessageBytes.',
      ),
    maxBufferedBytes: z
      .number()
      .int()
      .positive()
      .default(64 * 1024 * 1024)
      .describe(
        'Bytes all connections of this listener hold together: at this, a connection holding bytes is not read until the total falls below (frames it left unfinished meet frameTimeoutMs). Never below maxMessageBytes.',
      ),
  })
  .strict();
export type MllpLimitsConfig = z.infer<typeof MllpLimits>;

const MllpListener = z
  .object({
    source: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]*$/, 'expected a lower-case name such as "lab-sil"')
      .describe('Source name recorded with every result received on this listener (e.g. "lab-sil", "ris"); routing rules and mailboxes refer to it.'),
    host: hostname.describe('Address the listener binds to.'),
    port: z.number().int().min(0).max(65535).describe('TCP port of the listener (0: any free port).'),
    maxMessageBytes: z.number().int().positive().describe('A frame larger than this is refused with AR (TOO_LARGE).'),
    idleTimeoutMs: z
      .number()
      .int()
      .positive()
      .describe('A connection on which no frame starts, ends or has its ACK taken for this long is closed; stray bytes between frames do not keep it open.'),
    tls: TlsServerOptions.optional().describe('TLS on this listener; without it the listener speaks plain MLLP.'),
    limits: MllpLimits.optional().describe(
      'What one listener lets its peers hold, so that slow or flooding peers cannot exhaust the intake\'s memory (sized for 512 MiB); a limit left out keeps its default.',
    ),
  })
  .strict();

/** The limits of a listener, its defaults filled in. */
export const mllpLimitsOf = (listener: { limits?: MllpLimitsConfig | undefined }): MllpLimitsConfig => listener.limits ?? MllpLimits.parse({});

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
const XdsCodeConfig = z
  .object({ code: z.string().min(1).describe('The code, in its value set.'), displayName: z.string().min(1).describe("The code's label.") })
  .strict();
const domainName = z.string().regex(/^([a-z0-9-]+\.)+[a-z0-9-]{2,}$/i, 'expected a domain name');

/** Who may be sent a result: PRT RCT recipients, ordering and copied practitioners, the reader, the patient. */
const RecipientRole = z.enum(['recipient', 'ordering', 'copy', 'interpreter', 'patient']);
export type RecipientRole = z.infer<typeof RecipientRole>;

const SourceRouting = z
  .object({
    roles: z
      .object({
        lab: z.array(RecipientRole).describe('Roles served for lab results.'),
        imaging: z.array(RecipientRole).describe('Roles served for imaging results.'),
        other: z.array(RecipientRole).describe('Roles served for other results.'),
      })
      .partial()
      .strict()
      .describe(
        'Roles served per result type, among recipient (PRT RCT), ordering, copy, interpreter and patient; a type left out uses the defaults (PRT RCT for CI-SIS, ordering + copies for raw results).',
      ),
    resultType: z
      .enum(['lab', 'imaging', 'other'])
      .optional()
      .describe('Kind of result when the document code does not say (LOINC 11502-2 lab, 18748-4 imaging).'),
    defaultMailbox: mailAddress.optional().describe("Organisational mailbox that receives a practitioner's copy when the directory has no mailbox for them."),
    siteStructureIds: z.array(z.string().min(1)).describe('Structures of the sending site (FINESS, national structure ids): their mailboxes are preferred.'),
  })
  .strict();
export type SourceRouting = z.infer<typeof SourceRouting>;

const ApplicativeMailbox = z
  .object({
    address: mailAddress.describe('The BAL applicative address, used as From and as the DSN return path.'),
    displayName: z.string().optional().describe('Display name shown with the address in From.'),
    sources: z.array(z.string()).min(1).describe('Sources whose results leave from this mailbox.'),
    // The mailbox's IGC-Santé ORG AUTH_CLI certificate: PEM files, or one PKCS#12 file and its passphrase.
    certFile: filePath.optional().describe("The mailbox's IGC-Santé client certificate (PEM file); give keyFile with it, or pfxFile instead."),
    keyFile: filePath.optional().describe("The private key of certFile (PEM file)."),
    pfxFile: filePath.optional().describe("The mailbox's certificate and key as one PKCS#12 file, instead of certFile and keyFile."),
    pfxPassphrase: SecretRef.optional().describe('Passphrase of pfxFile.'),
    imapPassword: SecretRef.describe("Password of the mailbox's IMAP account at the operator, where its DSNs and MDNs arrive."),
    smtpUser: z.string().min(1).optional().describe('For operator.smtpAuth "login": the SASL user (default: the address).'),
    smtpPassword: SecretRef.optional().describe('For operator.smtpAuth "login": the SASL password.'),
    patientReplies: z
      .union([z.literal('closed'), z.object({ replyTo: mailAddress }).strict()])
      .optional()
      .describe(
        'What a patient may answer in Mon espace santé: "closed" (the default: every mail to a patient carries X-MSS-MES: FIN) or { replyTo: <a staffed organisational MSSanté mailbox> } (Reply-To, no FIN). A producer\'s explicit FIN always wins.',
      ),
    forwardRepliesTo: mailAddress
      .optional()
      .describe(
        'A staffed MSSanté mailbox of the same facility that receives a copy of every reply (a mail that is neither a DSN nor an MDN) reaching this mailbox, sent through the operator with this mailbox\'s certificate. Auto-replies are not forwarded. Unset: replies are kept and listed only.',
      ),
  })
  .strict()
  .refine((m) => (m.pfxFile ? !m.certFile && !m.keyFile : Boolean(m.certFile && m.keyFile)), {
    message: 'give certFile and keyFile (PEM), or pfxFile (PKCS#12), not both',
  });

/** Access control of the HTTP API (issue #22): who may read what, and the api service's HTTP protections. docs/security.md. */
const ApiAccess = z
  .object({
    tls: TlsServerOptions.optional().describe(
      "HTTPS for the api service's server (the other services' /healthz and /metrics stay plain HTTP: they hold no patient data). Without it, the API belongs behind an ingress that terminates TLS.",
    ),
    allowedHosts: z
      .array(hostname)
      .default([])
      .describe('Host header values (a name, or name:port) the API answers; any other gets 421. Empty: any host (loopback demo only). /healthz and /metrics answer any host.'),
    trustProxy: z
      .array(z.string().min(1))
      .default([])
      .describe("Addresses or CIDR ranges of the reverse proxies (ingress) whose X-Forwarded-For gives the client's address (audit trail, rate limit)."),
    rateLimit: z
      .object({
        max: z.number().int().min(1).default(600).describe('Requests one caller (an API key, an OIDC subject, or an address without credential) may make per window; past it, 429.'),
        windowMs: z.number().int().min(1000).default(60_000).describe('The rate limit\'s window.'),
      })
      .strict()
      .prefault({})
      .describe('Per-caller rate limit of the API.'),
    auditRetentionDays: z
      .number()
      .int()
      .min(1)
      .max(3650)
      .default(400)
      .describe('How long the audit trail keeps an event (pruned hourly by the api service; mssgw audit prune).'),
    oidc: z
      .object({
        issuer: z.string().regex(/^https?:\/\/\S+$/, 'expected an http(s) URL').describe("The identity provider's issuer; a token's iss must be exactly this."),
        audience: z
          .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
          .describe("What a token's aud must name (this API's identifier at the IdP)."),
        jwksUri: z
          .string()
          .regex(/^https?:\/\/\S+$/, 'expected an http(s) URL')
          .optional()
          .describe("The IdP's signing keys (JWKS); default: the jwks_uri of the issuer's /.well-known/openid-configuration."),
        rolesClaim: z.string().min(1).default('roles').describe('The claim holding the roles (a dotted path such as realm_access.roles; an array, or space-separated values).'),
        roleMapping: z
          .record(z.string().min(1), z.enum(['viewer', 'operator', 'admin']))
          .describe("The IdP's role names → the API's roles (viewer, operator, admin); the highest one a token has applies, none: 403."),
        algorithms: z.array(z.string().min(1)).min(1).default(['RS256', 'PS256', 'ES256', 'EdDSA']).describe('Signature algorithms accepted.'),
        clockToleranceSeconds: z.number().int().min(0).max(300).default(30).describe('Clock skew allowed on exp and nbf.'),
        accessTokenType: z
          .string()
          .regex(/^[\x21-\x7e]{1,64}$/, 'expected a JWT type such as at+jwt')
          .optional()
          .describe("The type a token's header must give (typ), e.g. at+jwt (RFC 9068): an ID token or another JWT of the IdP is then refused even when it names the audience. Absent: not checked (some IdPs, Keycloak among them, sign access tokens as plain JWT)."),
      })
      .strict()
      .optional()
      .describe('OIDC bearer tokens (JWT access tokens) from the identity provider, besides API keys; absent: API keys only.'),
    console: z
      .object({
        oidcClientId: z.string().min(1).optional().describe("The operator console's client id at the IdP (a public client, authorization code + PKCE, redirect URI: the console's own address, https://<api host>/); absent: the console signs in with an API key only."),
        oidcScope: z.string().min(1).default('openid').describe('The scopes the console asks the IdP for (space-separated); the access token must carry api.oidc.audience and the roles claim.'),
      })
      .strict()
      .prefault({})
      .describe('The operator console served at / by the api service (docs/console.md).'),
  })
  .strict();
export type ApiAccessConfig = z.infer<typeof ApiAccess>;
/** The API's access settings, their defaults filled in when the configuration has none. */
export const apiAccessOf = (config: { api?: ApiAccessConfig | undefined }): ApiAccessConfig => config.api ?? ApiAccess.parse({});

export const GatewayConfigSchema = z
  .object({
    environment: z
      .enum(['production', 'test', 'demo'])
      .default('production')
      .describe(
        '"production" (the default) refuses test INS OIDs, test domains, plaintext SMTP, test document OIDs, the demo product reference, sandbox paths, loopback listeners in a container, and a mailbox without its certificate, and requires the liste blanche (docs/deployment.md); "test" and "demo" accept them on purpose.',
      ),
    redis: z
      .object({
        url: z
          .string()
          .regex(/^rediss?:\/\//, 'expected a redis:// URL')
          .describe('redis://host:port[/db] or rediss:// (TLS), with an ACL user name when needed; the password goes in redis.password (production refuses one in the URL).'),
        password: SecretRef.optional().describe('Password of Redis (requirepass or the ACL user\'s), from a file or an environment variable.'),
        caFile: filePath.optional().describe("rediss://: the CA (PEM) that signs Redis's certificate, trusted instead of Node's own store."),
        certFile: filePath.optional().describe('rediss://: a client certificate (PEM) for Redis servers that ask for one (tls-auth-clients); give keyFile with it.'),
        keyFile: filePath.optional().describe('The private key of certFile (PEM).'),
        tlsServerName: hostname.optional().describe("rediss://: the name Redis's certificate must carry, when it is not the host connected to (with Sentinel, the master is reached by the address it announces)."),
        prefix: z.string().min(1).default('mssgw').describe("Prefix of every key and queue the gateway writes, so that several gateways can share one Redis."),
        sentinel: z
          .object({
            masterName: z.string().min(1).describe('Name of the master the Sentinels watch.'),
            nodes: z.array(z.string().regex(/^[^:]+:\d+$/, 'expected host:port')).min(1).describe('The Sentinels, as host:port.'),
            password: SecretRef.optional().describe('Password of the Sentinels.'),
          })
          .strict()
          .optional()
          .describe('High availability: the Sentinels that name the master (the URL then gives only its user, db and scheme: with rediss://, the Sentinels and the master are reached over TLS).'),
      })
      .strict()
      .refine((r) => Boolean(r.certFile) === Boolean(r.keyFile), { message: 'give certFile and keyFile together', path: ['certFile'] })
      .refine((r) => r.url.startsWith('rediss://') || !(r.caFile || r.certFile || r.tlsServerName), { message: 'caFile, certFile and tlsServerName are for TLS: use a rediss:// URL', path: ['url'] })
      .refine((r) => !(r.password && /^rediss?:\/\/[^/@]*:[^/@]*@/.test(r.url)), { message: 'a password in the URL and redis.password: give it in redis.password only', path: ['url'] })
      .prefault(ABSENT)
      .describe('Redis holds the queues, the stores and the status records; it runs with AOF.'),
    postgres: z
      .object({
        url: z
          .string()
          .regex(/^postgres(ql)?:\/\/[^:@/]+@[^/]+\/[^/?]+$/, 'expected postgres://user@host:port/database (the password goes in postgres.password)')
          .describe('The message store: postgres://user@host:port/database, without the password.'),
        password: SecretRef.optional().describe('Password of the database user, from a file or an environment variable.'),
        schema: z
          .string()
          .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'expected a lower-case SQL name such as "mssgw"')
          .default('mssgw').describe("The gateway's tables live in this schema (created by the migrations), so that several gateways, tests or demo runs can share one database."),
        sslMode: z
          .enum(['disable', 'require', 'verify-ca', 'verify-full'])
          .default('verify-full').describe('TLS to the server: verify-full checks the certificate against caFile and the host name; production refuses disable and require.'),
        caFile: filePath.optional().describe('CA bundle that signs the server certificate (verify-ca, verify-full).'),
        poolSize: z.number().int().min(1).max(100).default(10).describe('Connections each process keeps open at most.'),
        connectTimeoutMs: z.number().int().positive().default(5_000).describe('How long a new connection may take before the attempt fails.'),
        migrateOnStart: z.boolean().default(true).describe('Apply pending schema migrations at start (under an advisory lock, so processes starting together are safe); off, run mssgw migrate.'),
        sweepIntervalMs: z.number().int().min(100).default(60_000).describe('How often a router looks for results and recipients whose job Redis lost (a restart without persistence, a failover, a flush) and queues them again.'),
        sweepGraceMs: z.number().int().min(0).default(60_000).describe('A result or recipient is only queued again by the sweeper once it has waited this long (its job is normally queued within milliseconds of its commit).'),
        bodyRetentionDays: z.number().int().min(1).max(3650).default(30).describe("How long the bodies of a result (its HL7 text, documents, mails) are kept once every recipient is final; its record and its recipients' histories stay for receipts.retentionDays."),
      })
      .strict()
      .refine((p) => !p.sslMode.startsWith('verify') || p.caFile, { message: 'verify-ca and verify-full need postgres.caFile', path: ['caFile'] })
      .prefault(ABSENT)
      .describe('PostgreSQL (15 or newer) is the record of every result received.'),
    kafka: z
      .object({
        enabled: z.boolean().default(false).describe('Use Kafka: the intake consumes intakeTopics and the feedback publishes status events on statusTopic.'),
        brokers: z.array(z.string().regex(/^[^:]+:\d+$/, 'expected host:port')).default([]).describe('Bootstrap brokers, as host:port (at least one when enabled).'),
        clientId: z.string().min(1).default('mssgw').describe('Kafka client id of the gateway (the feedback adds "-feedback").'),
        groupId: z.string().min(1).default('mssgw-intake').describe('Consumer group of the intake: instances of one gateway share the partitions.'),
        intakeTopics: z.array(z.string().min(1)).default([]).describe('Topics of results to consume: raw HL7 (ER7) or mssgw.result.v1 envelopes.'),
        deadLetterTopic: z.string().min(1).default('mssgw.results.dlq').describe('Where a refused record goes, with the reason in its headers.'),
        statusTopic: z.string().min(1).default('mssgw.status').describe('Where every state change of a recipient is published (mssgw.status.v1, keyed by result id).'),
        partitionsConcurrently: z
          .number()
          .int()
          .min(1)
          .max(64)
          .default(4).describe('Partitions whose batches are queued at the same time (kafkajs processes one at a time by default).'),
        maxBytesPerPartition: z
          .number()
          .int()
          .min(64 * 1024)
          .default(1024 * 1024).describe('Upper bound of one fetch per partition. Larger batches mean fewer commits, but more results held at once.'),
        tls: z
          .object({
            caFile: filePath.describe("CA that signs the brokers' certificates (PEM file)."),
            certFile: filePath.optional().describe('Client certificate for mutual TLS (PEM file), with keyFile.'),
            keyFile: filePath.optional().describe('Private key of certFile (PEM file).'),
            serverName: hostname.optional().describe("Name checked against the brokers' certificates, when it is not the broker's host name."),
          })
          .strict()
          .refine((t) => Boolean(t.certFile) === Boolean(t.keyFile), { message: 'give both certFile and keyFile, or neither' })
          .optional()
          .describe('TLS to the brokers, checked against caFile; mutual TLS when a client certificate and key are given.'),
        sasl: z
          .object({
            mechanism: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']).describe('SASL mechanism.'),
            username: z.string().min(1).describe('SASL user.'),
            password: SecretRef.describe('SASL password.'),
          })
          .strict()
          .optional()
          .describe('SASL authentication (over TLS only: refused without kafka.tls).'),
      })
      .strict()
      // Results are health data and a SASL password is a credential: neither crosses the network in clear.
      .refine((k) => !k.sasl || k.tls, { message: 'kafka.sasl needs kafka.tls: a SASL password is never sent in clear', path: ['sasl'] })
      .refine((k) => !k.enabled || k.brokers.length > 0, { message: 'kafka.enabled needs at least one broker', path: ['brokers'] })
      .prefault(ABSENT)
      .describe('Kafka intake, dead-letter and status topics.'),
    http: z
      .object({
        host: hostname.default('127.0.0.1').describe('Address the HTTP server (API, /healthz, /metrics) binds to.'),
        port: z.number().int().min(0).max(65535).default(8088).describe('Port of the HTTP server (0: any free port).'),
      })
      .strict()
      .prefault(ABSENT)
      .describe('The HTTP server every process runs: /healthz, /metrics, and the API when the api service runs.'),
    api: ApiAccess.optional().describe('Access control of the HTTP API (the api service): API keys, OIDC tokens, TLS, Host check, rate limit, audit retention.'),
    mllp: z
      .object({ listeners: z.array(MllpListener).default([]).describe('One entry per MLLP port; each names the source of what it receives.') })
      .strict()
      .prefault(ABSENT)
      .describe('MLLP listeners the intake opens.'),
    intake: z
      .object({
        tolerance: z
          .record(z.string().min(1), IntakeTolerance)
          .default({}).describe(
            'Per source (an MLLP listener\'s source, a Kafka envelope\'s source or topic name): how strictly its results are read. ' +
              'A source left out reads with mailBody "warn" and flagMatrix "strict".',
          ),
      })
      .strict()
      .prefault(ABSENT)
      .describe('What the intake tolerates in the results it receives.'),
    operator: z
      .object({
        smtpHost: hostname.describe("The operator's SMTP submission server."),
        smtpPort: port.default(587).describe("Port of the operator's SMTP submission server."),
        smtpImplicitTls: z.boolean().default(false).describe('true: implicit TLS (465); false: STARTTLS, required.'),
        insecurePlaintext: z.boolean().default(false).describe('Benchmarks against a plain SMTP sink only: no TLS at all. Refused in production.'),
        smtpAuth: z
          .enum(['none', 'external', 'login'])
          .default('none').describe('SASL after TLS: none (the client certificate is enough), EXTERNAL (identity from the certificate), or LOGIN (mailboxes[].smtpPassword).'),
        imapHost: hostname.describe("The operator's IMAP server, where the applicative mailboxes receive DSNs and MDNs."),
        imapPort: port.default(143).describe("Port of the operator's IMAP server."),
        imapImplicitTls: z.boolean().default(false).describe('true: implicit TLS (993); false: STARTTLS, required.'),
        caFile: filePath.describe("CA bundle that signs the operator's server certificates (IGC-Santé in production)."),
        tlsServerName: hostname.describe("Name checked against the operator's certificates."),
        reportingMtas: z
          .array(hostname)
          .optional()
          .describe(
            "Names the operator's own MTA writes in Reporting-MTA. A DSN without a known ENVID is applied by its Message-ID and recipient only when it names one of them and was written inside the operator (no Received hop over SMTP, null sender). Default: tlsServerName.",
          ),
        maxConnections: z.number().int().min(1).max(100).default(4).describe('SMTP connections per dispatcher process and mailbox.'),
        maxMessagesPerConnection: z.number().int().min(1).default(1000).describe('Mails sent over one SMTP connection before it is renewed.'),
        rate: z
          .object({
            maxPerSecond: z.number().positive().default(2000).describe('Mails per second the operator host is sent at most.'),
            minPerSecond: z.number().positive().default(1).describe('The rate never slows down below this.'),
            slowDownFactor: z.number().gt(0).lt(1).default(0.5).describe('Each 421/450/451/452 reply multiplies the rate by this.'),
            recoveryMs: z.number().int().positive().default(10_000).describe('After this long without such a reply, the rate doubles back towards maxPerSecond.'),
            burst: z.number().int().min(1).default(50).describe('Mails that may leave at once above the steady rate.'),
          })
          .strict()
          .prefault(ABSENT)
          .describe('Sending rate towards the operator host, kept in Redis and shared by every dispatcher process and mailbox.'),
      })
      .strict()
      .prefault(ABSENT)
      .describe('The MSSanté operator: SMTP to send, IMAP to read receipts, both with mutual TLS.'),
    mailboxes: z
      .array(ApplicativeMailbox)
      .min(1)
      .describe('The applicative mailboxes (BAL applicatives) the gateway sends from, each with its sources and certificate.'),
    mssante: z
      .object({
        productReference: z.string().min(1).describe('X-MSS-NIL: the product reference obtained when declaring the software (ECO.2.4.3).'),
        whitelist: z
          .object({
            location: z.string().min(1).optional().describe('File or https URL of listeblanchemssante.xml; required in production.'),
            sha256: z
              .string()
              .regex(/^[0-9a-fA-F]{64}$/, 'expected 64 hex digits')
              .optional()
              .describe('Expected SHA-256 (hex) of the list; a list that does not match is not used.'),
            checksumUrl: z.string().url().optional().describe('URL of the published checksum file, instead of sha256.'),
            caFile: filePath.optional().describe("CA certificates (PEM) trusted for an https location (or checksumUrl) besides Node's own store: the IGC-Santé chain, for a server whose certificate it signs (docs/deployment.md)."),
            refreshIntervalMs: z.number().int().min(60_000).default(24 * 3600_000).describe('How often the list is loaded again.'),
          })
          .strict()
          .prefault(ABSENT)
          .describe('The liste blanche: no mail is ever addressed to a domain outside it (patient.mssante.fr aside).'),
        testDomains: z.array(domainName).default([]).describe('Test domains accepted on purpose, outside the liste blanche; refused in production.'),
        // The built-in texts are in libs/mssante/src/templates.ts.
        bodies: z
          .object({
            professional: z
              .object({
                initial: z.string().describe('Body of a first sending to professionals.'),
                replace: z.string().describe('Body of a replacement sent to professionals.'),
                delete: z.string().describe('Body of a deletion sent to professionals.'),
              })
              .partial()
              .strict()
              .describe('Bodies of the mails to professionals.'),
            patient: z
              .object({
                initial: z.string().describe('Body of a first sending to the patient.'),
                replace: z.string().describe('Body of a replacement sent to the patient.'),
                delete: z.string().describe('Body of a deletion sent to the patient.'),
              })
              .partial()
              .strict()
              .describe("Bodies of the patient's mails."),
          })
          .partial()
          .strict()
          .optional()
          .describe(
            'Mail bodies used when the producer sends no CORPSMAIL_PS / CORPSMAIL_PATIENT, per audience and action; "{label}" is replaced by the document\'s label. Any left out keep the built-in French texts.',
          ),
        documents: z
          .object({
            idRoot: oid.describe('OID under which the gateway issues the ids of the CDA documents it wraps (a set id arc is derived).'),
            sourceOid: oid.describe('XDSSubmissionSet.sourceId: the OID identifying this gateway as the source of submissions.'),
            custodian: z
              .object({
                idNatStruct: z.string().min(1).describe('National structure id of the establishment.'),
                name: z.string().min(1).describe('Name of the establishment.'),
              })
              .strict()
              .prefault(ABSENT)
              .describe('The custodian of wrapped documents: the establishment.'),
            facilityType: XdsCodeConfig.prefault(ABSENT).describe('XDS healthcareFacilityTypeCode (TRE_R02-SecteurActivite), when the CDA header does not give it.'),
            practiceSetting: XdsCodeConfig.prefault(ABSENT).describe('XDS practiceSettingCode (TRE_A01-CadreExercice), when the CDA header does not give it.'),
          })
          .strict()
          .prefault(ABSENT)
          .describe('What the gateway writes into the CDA documents it wraps and the XDM metadata it builds.'),
      })
      .strict()
      .prefault(ABSENT)
      .describe('The MSSanté mail: product reference, liste blanche, bodies, document metadata.'),
    directory: z
      .object({
        extraction: z
          .object({
            location: z.string().min(1).describe('File (.zip or .txt) or https URL of Extraction_Correspondance_MSSante.'),
            caFile: filePath.optional().describe("CA certificates (PEM) trusted for an https location besides Node's own store: the IGC-Santé chain, for a server whose certificate it signs (docs/deployment.md)."),
            refreshIntervalMs: z.number().int().min(60_000).describe('How often the extraction is imported again (one import across all routers).'),
            minRatio: z.number().min(0).max(1).describe('A new import with fewer mailboxes than this share of the current one is not swapped in.'),
          })
          .strict()
          .optional()
          .describe('The Annuaire Santé MSSanté extraction, imported at start when empty and refreshed on a schedule.'),
        fhir: z
          .object({
            baseUrl: z.string().url().describe('Base URL of the Annuaire Santé FHIR API.'),
            caFile: filePath.optional().describe("CA certificates (PEM) trusted for an https baseUrl besides Node's own store: the IGC-Santé chain, for a server whose certificate it signs (docs/deployment.md)."),
            apiKey: SecretRef.describe('API key, sent in the ESANTE-API-KEY header.'),
            timeoutMs: z.number().int().positive().describe('A request unanswered after this long fails.'),
            cacheTtlMs: z.number().int().nonnegative().describe('How long an answer (a miss too) is kept.'),
            cacheSize: z.number().int().positive().describe('Answers kept at most.'),
            failureThreshold: z.number().int().min(1).describe('Failures in a row that open the circuit: the API is not asked while it is open.'),
            resetMs: z.number().int().positive().describe('How long the circuit stays open.'),
          })
          .strict()
          .optional()
          .describe('Live Annuaire Santé FHIR API, asked when the extraction does not know a practitioner.'),
      })
      .strict()
      .prefault(ABSENT)
      .describe('The Annuaire Santé directory, where practitioners and structures find their MSSanté mailboxes.'),
    routing: z
      .object({
        sources: z.record(z.string(), SourceRouting).default({}).describe('Per source (listener or topic source name): who receives which kind of result.'),
        patientOpposition: z
          .object({
            file: filePath.describe("An import source of the patients' oppositions (kept in the message store; mssgw opposition): one per line, 'ID [DIRECTION [DATE]]' with ID = INS:<ins>, IPP:<ipp>@<facility> or a bare INS or IPP (the old format), DIRECTION = patient (default), professionals or both ('#' comments); see docs/recipients.md."),
            refreshIntervalMs: z.number().int().min(1000).describe('How often the file is checked for changes (a changed file is imported again: its lines replace those of its previous version).'),
          })
          .strict()
          .optional()
          .describe('The opposition file: its patients are not written to, or their practitioners not, as each line says.'),
        maxPatientMailBytes: z.number().int().positive().default(25 * 1024 * 1024).describe('Mail size limit towards patients (Mon espace santé: 25 MB).'),
        maxMailBytes: z.number().int().positive().default(50 * 1024 * 1024).describe("Mail size limit towards professionals (the operator's)."),
        attempts: z.number().int().min(1).default(10).describe('Routing attempts of a result (e.g. while the directory is unavailable).'),
        backoffMs: z.number().int().positive().default(1_000).describe('Delay before the second routing attempt, doubling for each one after.'),
      })
      .strict()
      .prefault(ABSENT)
      .describe('Who receives each result.'),
    receipts: z
      .object({
        sweepIntervalMs: z.number().int().positive().default(30_000).describe('Periodic sweep of the applicative mailboxes, besides IMAP IDLE.'),
        confirmationTimeoutMs: z.number().int().positive().default(24 * 3600_000).describe('A recipient with no final DSN this long after submission becomes "unconfirmed".'),
        retentionDays: z
          .number()
          .int()
          .min(1)
          .max(3650)
          .default(90).describe('How long the message store keeps a result, its recipients and their histories, counted from its reception, once every recipient is final (an hourly prune in the router; mssgw prune).'),
        maxMailBytes: z
          .number()
          .int()
          .min(64 * 1024)
          .default(10 * 1024 * 1024).describe(
            'A mail larger than this (its IMAP size) is neither fetched nor parsed but moved to Quarantine. A DSN of ours returns only the headers of the mail (RET=HDRS) and an MDN is a few KB.',
          ),
        maxTextBytes: z
          .number()
          .int()
          .min(4096)
          .default(64 * 1024).describe("Only this many first bytes of a mail's text and of each report part are read (the notice and the per-recipient fields come first)."),
        maxMimeParts: z.number().int().min(4).default(100).describe('A mail with more MIME parts than this (the mail itself included) is moved to Quarantine.'),
        maxNestingDepth: z
          .number()
          .int()
          .min(2)
          .default(8).describe('A mail whose parts nest deeper than this (each multipart and each attached message counts one level) is moved to Quarantine.'),
        maxMailsPerSweep: z
          .number()
          .int()
          .min(1)
          .default(1000).describe('Mails fetched from a mailbox in one pass; while more wait, another pass follows at once, the mailbox let go in between.'),
      })
      .strict()
      .prefault(ABSENT)
      .describe('Reading DSNs and MDNs, and how long outcomes are kept. A mail that cannot be read goes to the Quarantine folder.'),
    dispatcher: z
      .object({
        retryBudgetMs: z.number().int().min(1_000).default(24 * 3600_000).describe('How long a delivery is retried after its first transient failure (4xx, timeout) before it goes to the dead-letter queue; its last attempt is made when the budget ends. An unreachable operator uses none of it: the mailbox pauses instead.'),
        backoffMs: z.number().int().positive().default(2_000).describe('Wait before the second sending attempt, doubling for each one after (with jitter); also the first pause of a mailbox whose operator is unreachable or refuses it.'),
        maxBackoffMs: z.number().int().positive().default(15 * 60_000).describe('No wait between attempts, nor pause of a mailbox, is longer than this.'),
        concurrency: z.number().int().min(1).default(16).describe('Deliveries a dispatcher process sends at once, per mailbox.'),
        lockMs: z.number().int().min(1000).default(30_000).describe('A job whose worker died is taken back after this long (BullMQ lock and stalled check).'),
        reconcileMs: z
          .number()
          .int()
          .min(0)
          .default(600_000).describe(
            'After an interrupted attempt, how long to wait for a DSN proving the operator took the mail before sending it again (the mail may have been accepted just before the crash). A DSN comes back in seconds from the same operator and in minutes from another one (its relay queues): 10 minutes covers both.',
          ),
      })
      .strict()
      .prefault(ABSENT)
      .describe('Sending each delivery over SMTP.'),
    feedback: z
      .object({
        zamEndpoints: z
          .array(
            z
              .object({
                source: z.string().describe('The source whose producer this is.'),
                host: hostname.describe("The producer's MLLP host."),
                port: port.describe("The producer's MLLP port."),
                ackTimeoutMs: z.number().int().positive().optional().describe("How long to wait for the producer's ACK (default 10 s)."),
                tls: z
                  .object({
                    caFile: filePath.optional().describe("The CA (PEM) that signs the producer's certificate; default: Node's own store."),
                    certFile: filePath.optional().describe("The gateway's client certificate (PEM), for a producer that asks for one (mutual TLS); give keyFile with it."),
                    keyFile: filePath.optional().describe('The private key of certFile (PEM).'),
                    servername: hostname.optional().describe("The name the producer's certificate must carry, when it is not host."),
                  })
                  .strict()
                  .refine((t) => Boolean(t.certFile) === Boolean(t.keyFile), { message: 'give certFile and keyFile together', path: ['certFile'] })
                  .optional()
                  .describe('TLS to the producer (the ZAM\'s OBX carries the INS); without it, plain MLLP, which production refuses unless insecurePlaintext is true.'),
                insecurePlaintext: z.boolean().optional().describe('Accept plain MLLP to this producer in production (a link protected otherwise, e.g. on the same host or a VPN).'),
              })
              .strict(),
          )
          .default([])
          .describe("Where each source's producer takes its ZAM business acknowledgements over MLLP."),
      })
      .strict()
      .prefault(ABSENT)
      .describe('What producers are told: ZAM acknowledgements over MLLP (status events go to kafka.statusTopic).'),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('Level of the JSON log lines (pino).'),
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
    if (c.postgres.sslMode === 'disable' || c.postgres.sslMode === 'require') {
      ctx.addIssue({ code: 'custom', path: ['postgres', 'sslMode'], message: 'production needs verify-ca or verify-full: health data never crosses the network unchecked' });
    }
    if (!c.mssante.whitelist.location) {
      ctx.addIssue({ code: 'custom', path: ['mssante', 'whitelist', 'location'], message: 'production needs the liste blanche (file or URL)' });
    }
  });

export type GatewayConfig = z.infer<typeof GatewayConfigSchema>;
export type MllpListenerConfig = z.infer<typeof MllpListener>;
export type RoutingConfig = GatewayConfig['routing'];
export type ApplicativeMailboxConfig = z.infer<typeof ApplicativeMailbox>;
