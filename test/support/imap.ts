import { ImapFlow } from 'imapflow';
import { readSecret, type GatewayConfig } from '@mssgw/config';
import { mailboxTls } from '@mssgw/runtime';

/** How many mails each of `folders` of the test's mailbox holds, read over IMAP as the gateway reads them. */
export async function folderCounts(config: GatewayConfig, folders: string[]): Promise<Record<string, number>> {
  const mailbox = config.mailboxes[0]!;
  const client = new ImapFlow({
    host: config.operator.imapHost, port: config.operator.imapPort, secure: false, doSTARTTLS: true,
    auth: { user: mailbox.address, pass: readSecret(mailbox.imapPassword) }, tls: mailboxTls(config, mailbox), logger: false,
  });
  await client.connect();
  try {
    const out: Record<string, number> = {};
    for (const f of folders) {
      const s = await client.status(f, { messages: true });
      out[f] = s ? (s.messages ?? 0) : 0;
    }
    return out;
  } finally {
    await client.logout();
  }
}
