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

/** Exports the expiry of each certificate of a PEM file (a bundle may hold several) in mssgw_tls_certificate_expiry. */
export function watchCertificateExpiry(pem: Buffer, usage: string): void {
  for (const block of pem.toString('latin1').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []) {
    const x509 = new X509Certificate(block);
    // The subject of a certificate is an organisation or a server, never a person.
    metrics.certificateExpiry.set({ usage, subject: x509.subject.replace(/\n/g, ', ') }, Math.floor(Date.parse(x509.validTo) / 1000));
  }
}

/** The mailbox's client certificate and the operator's CA, as every TLS connection of that mailbox uses them. */
export function mailboxTls(config: GatewayConfig, mailbox: ApplicativeMailboxConfig): MailboxTls {
  const cert = readFileSync(mailbox.certFile);
  const x509 = new X509Certificate(cert);
  metrics.certificateExpiry.set({ usage: 'mailbox-client', subject: mailbox.address }, Math.floor(Date.parse(x509.validTo) / 1000));
  const ca = readFileSync(config.operator.caFile);
  watchCertificateExpiry(ca, 'operator-ca');
  return {
    key: readFileSync(mailbox.keyFile),
    cert,
    ca,
    servername: config.operator.tlsServerName,
    minVersion: 'TLSv1.2',
    ciphers: MSSANTE_CIPHERS,
  };
}

