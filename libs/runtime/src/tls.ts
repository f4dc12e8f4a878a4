import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext, TLSSocket } from 'node:tls';
import { readSecret, type ApplicativeMailboxConfig, type GatewayConfig } from '@mssgw/config';
import { metrics } from '@mssgw/telemetry';

/** ECO.1.1.3: the only suites an MSSanté client may negotiate (TLS 1.2; TLS 1.3 suites are separate in OpenSSL). */
export const MSSANTE_CIPHERS = 'ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-SHA384:ECDHE-RSA-AES128-SHA256';

export type MailboxTls = ({ key: Buffer; cert: Buffer } | { pfx: Buffer; passphrase: string }) & {
  ca: Buffer;
  servername: string;
  minVersion: 'TLSv1.2';
  ciphers: string;
};

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
  const identity = mailbox.pfxFile
    ? { pfx: readFileSync(mailbox.pfxFile), passphrase: mailbox.pfxPassphrase ? readSecret(mailbox.pfxPassphrase) : '' }
    : { key: readFileSync(mailbox.keyFile!), cert: readFileSync(mailbox.certFile!) };
  metrics.certificateExpiry.set({ usage: 'mailbox-client', subject: mailbox.address }, Math.floor(Date.parse(clientCertificate(identity).validTo) / 1000));
  const ca = readFileSync(config.operator.caFile);
  watchCertificateExpiry(ca, 'operator-ca');
  return { ...identity, ca, servername: config.operator.tlsServerName, minVersion: 'TLSv1.2', ciphers: MSSANTE_CIPHERS };
}

/** The client certificate of a PEM pair or a PKCS#12 file (read through a TLS context: Node has no PKCS#12 parser). */
function clientCertificate(identity: { cert: Buffer } | { pfx: Buffer; passphrase: string }): X509Certificate {
  if ('cert' in identity) return new X509Certificate(identity.cert);
  const socket = new TLSSocket(null as never, { secureContext: createSecureContext(identity) });
  try {
    const raw = (socket.getCertificate() as { raw?: Buffer } | null)?.raw;
    if (!raw) throw new Error('the PKCS#12 file holds no certificate');
    return new X509Certificate(raw);
  } finally {
    socket.destroy();
  }
}
