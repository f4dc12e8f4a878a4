import nodemailer, { type Transporter } from 'nodemailer';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { readSecret, type ApplicativeMailboxConfig, type GatewayConfig } from '@mssgw/config';
import { mailboxTls } from '@mssgw/runtime';
import { metrics } from '@mssgw/telemetry';

/** A pooled SMTP transport for one applicative mailbox: mutual TLS, STARTTLS required (or implicit TLS). */
export function createMailboxTransport(config: GatewayConfig, mailbox: ApplicativeMailboxConfig): Transporter {
  return nodemailer.createTransport({
    pool: true,
    host: config.operator.smtpHost,
    port: config.operator.smtpPort,
    maxConnections: config.operator.maxConnections,
    maxMessages: config.operator.maxMessagesPerConnection,
    name: mailbox.address.split('@')[1],
    ...transportSecurity(config, mailbox),
    ...smtpAuth(config, mailbox),
    connectionTimeout: 30_000,
    greetingTimeout: 30_000,
    socketTimeout: 120_000,
  });
}

/** Implicit TLS or STARTTLS (required), with the mailbox's certificate; plaintext only for benchmarks (never in production). */
function transportSecurity(config: GatewayConfig, mailbox: ApplicativeMailboxConfig) {
  if (config.operator.insecurePlaintext) return { secure: false, ignoreTLS: true, requireTLS: false };
  return { secure: config.operator.smtpImplicitTls, requireTLS: !config.operator.smtpImplicitTls, tls: mailboxTls(config, mailbox) };
}

/**
 * SASL after TLS, when the operator asks for it: EXTERNAL (RFC 4422: the identity is the TLS client certificate; the
 * authorization identity is left empty, "=") or LOGIN with the mailbox's password.
 */
function smtpAuth(config: GatewayConfig, mailbox: ApplicativeMailboxConfig) {
  if (config.operator.smtpAuth === 'login') {
    return { auth: { user: mailbox.smtpUser ?? mailbox.address, pass: readSecret(mailbox.smtpPassword!), method: 'LOGIN' } };
  }
  if (config.operator.smtpAuth === 'external') {
    return {
      auth: { type: 'custom', method: 'EXTERNAL', user: mailbox.address },
      customAuth: {
        EXTERNAL: async (ctx: { sendCommand(cmd: string): Promise<{ status: number; text: string }> }) => {
          const r = await ctx.sendCommand('AUTH EXTERNAL =');
          if (r.status !== 235) throw new Error(`AUTH EXTERNAL refused: ${r.status} ${r.text}`);
        },
      },
    };
  }
  return {};
}

/**
 * Connects once at start-up and reads the operator's EHLO: without DSN (RFC 3461) the operator will not report
 * deliveries, so tracking degrades to "submitted" and "unconfirmed"; that is said in the log and in a metric.
 */
export async function probeOperator(config: GatewayConfig, mailbox: ApplicativeMailboxConfig): Promise<{ dsn: boolean; extensions: string[] }> {
  const conn = new SMTPConnection({
    host: config.operator.smtpHost,
    port: config.operator.smtpPort,
    ...transportSecurity(config, mailbox),
    connectionTimeout: 15_000,
  });
  try {
    await new Promise<void>((resolve, reject) => {
      conn.once('error', reject);
      conn.connect(() => resolve());
    });
    // nodemailer keeps the EHLO keywords in a private field; reading it avoids a second, hand-written SMTP client.
    const extensions = (conn as unknown as { _supportedExtensions?: string[] })._supportedExtensions ?? [];
    const dsn = extensions.includes('DSN');
    metrics.operatorDsnSupported.set({ mailbox: mailbox.address }, dsn ? 1 : 0);
    return { dsn, extensions };
  } finally {
    conn.quit();
    conn.close();
  }
}
