import path from 'node:path';
import type { GatewayConfig } from './schema.ts';

/** Where deploy/local/*.sh keep the sandbox operator, its PKI and secrets. */
export const sandboxDir = (): string =>
  process.env['MSSGW_SANDBOX'] ?? path.resolve(import.meta.dirname, '../../../.sandbox');

/**
 * The embedded defaults: the demo on the local sandbox (deploy/local). With no configuration file at all
 * the gateway runs against it. Ports match deploy/local/lib.sh.
 */
export function demoDefaults(sandbox = sandboxDir()): GatewayConfig {
  const pki = path.join(sandbox, 'pki');
  const mailbox = (address: string, displayName: string, sources: string[]) => ({
    address,
    displayName,
    sources,
    certFile: path.join(pki, 'clients', `${address}.pem`),
    keyFile: path.join(pki, 'clients', `${address}.key`),
    imapPassword: { file: path.join(sandbox, 'secrets', `${address}.imap-password`) },
  });
  return {
    environment: 'demo',
    redis: { url: 'redis://127.0.0.1:16379', prefix: 'mssgw' },
    // The sandbox's PostgreSQL (deploy/local/postgres.sh): TLS from the sandbox CA, the password it generated.
    postgres: {
      url: 'postgres://mssgw@127.0.0.1:15432/mssgw',
      password: { file: path.join(sandbox, 'secrets', 'postgres-password') },
      schema: 'mssgw',
      sslMode: 'verify-full',
      caFile: path.join(pki, 'ca.pem'),
      poolSize: 10,
      connectTimeoutMs: 5_000,
      migrateOnStart: true,
    },
    kafka: {
      enabled: false,
      brokers: ['127.0.0.1:19092'],
      clientId: 'mssgw',
      groupId: 'mssgw-intake',
      intakeTopics: ['mssgw.results.in'],
      deadLetterTopic: 'mssgw.results.dlq',
      statusTopic: 'mssgw.status',
      partitionsConcurrently: 4,
      maxBytesPerPartition: 1024 * 1024,
    },
    http: { host: '127.0.0.1', port: 8088 },
    mllp: {
      listeners: [
        { source: 'lab', host: '127.0.0.1', port: 2575, maxMessageBytes: 32 * 1024 * 1024, idleTimeoutMs: 300_000 },
        { source: 'imaging', host: '127.0.0.1', port: 2576, maxMessageBytes: 32 * 1024 * 1024, idleTimeoutMs: 300_000 },
      ],
    },
    // Every source reads with mailBody "warn" and flagMatrix "strict" unless listed here.
    intake: { tolerance: {} },
    operator: {
      smtpHost: '127.0.0.1',
      smtpPort: 10587,
      smtpImplicitTls: false,
      smtpAuth: 'none',
      insecurePlaintext: false,
      imapHost: '127.0.0.1',
      imapPort: 10143,
      imapImplicitTls: false,
      caFile: path.join(pki, 'ca.pem'),
      tlsServerName: 'mail.operator.test',
      maxConnections: 4,
      maxMessagesPerConnection: 1000,
      rate: { maxPerSecond: 2000, minPerSecond: 1, slowDownFactor: 0.5, recoveryMs: 10_000, burst: 50 },
    },
    mailboxes: [
      mailbox('labo-noreply@chu-demo.mssante.test', 'Laboratoire CHU Demo', ['lab']),
      mailbox('imagerie-noreply@chu-demo.mssante.test', 'Imagerie CHU Demo', ['imaging']),
    ],
    mssante: {
      productReference: 'MSSGW-DEMO-0001',
      whitelist: { refreshIntervalMs: 24 * 3600 * 1000 },
      testDomains: ['chu-demo.mssante.test', 'cabinet-demo.mssante.test'],
      // 1.2.250.1.999: an arc for tests and demos; an establishment uses an OID of its own.
      documents: {
        idRoot: '1.2.250.1.999.3.1',
        sourceOid: '1.2.250.1.999.1.1',
        custodian: { idNatStruct: '1999999999', name: 'CHU Demo' },
        facilityType: { code: 'SA01', displayName: 'Etablissement public de santé' },
        practiceSetting: { code: 'ETABLISSEMENT', displayName: 'Etablissement de santé' },
      },
    },
    directory: {},
    routing: {
      // Raw results do not say whether they are lab or imaging: each source says it (their CDA says so otherwise).
      sources: {
        lab: { resultType: 'lab', roles: {}, siteStructureIds: ['999999999'] },
        imaging: { resultType: 'imaging', roles: {}, siteStructureIds: ['999999999'] },
      },
      maxPatientMailBytes: 25 * 1024 * 1024,
      maxMailBytes: 50 * 1024 * 1024,
      attempts: 10,
      backoffMs: 1_000,
    },
    receipts: {
      sweepIntervalMs: 30_000,
      confirmationTimeoutMs: 24 * 3600 * 1000,
      retentionDays: 90,
      maxMailBytes: 10 * 1024 * 1024,
      maxTextBytes: 64 * 1024,
      maxMimeParts: 100,
      maxNestingDepth: 8,
      maxMailsPerSweep: 1000,
    },
    dispatcher: { attempts: 8, backoffMs: 2_000, concurrency: 16, lockMs: 30_000, reconcileMs: 120_000 },
    feedback: { zamEndpoints: [] },
    logLevel: 'info',
  };
}
