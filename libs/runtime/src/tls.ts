import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ApplicativeMailboxConfig, GatewayConfig } from '@mssgw/config';
import { metrics } from '@mssgw/telemetry';

/** ECO.1.1.3: the only suites an MSSanté client may negotiate (TLS 1.2; TLS 1.3 suites are separate in OpenSSL). */
export const MSSANTE_CIPHERS = 'ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-SHA384:ECDHE-RSA-AES128-SHA256';

export interface MailboxTls {
  key: Buffer;
  cert: Buffer;
  ca: Buffer;
  servername: string;
  minVersion: 'TLSv1.2';
  ciphers: string;
}

/** The mailbox's client certificate and the operator's CA, as every TLS connection of that mailbox uses them. */
export function mailboxTls(config: GatewayConfig, mailbox: ApplicativeMailboxConfig): MailboxTls {
  const cert = readFileSync(mailbox.certFile);
  const x509 = new X509Certificate(cert);
  metrics.certificateExpiry.set({ usage: 'mailbox-client', subject: mailbox.address }, Math.floor(Date.parse(x509.validTo) / 1000));
  return {
    key: readFileSync(mailbox.keyFile),
    cert,
    ca: readFileSync(config.operator.caFile),
    servername: config.operator.tlsServerName,
    minVersion: 'TLSv1.2',
    ciphers: MSSANTE_CIPHERS,
  };
}

