import { afterAll, describe, expect, it } from 'vitest';
import { connectRedis, MailStore } from '@mssgw/queue';
import { tag } from '../support/env.ts';

describe('mail store (real Redis)', () => {
  const redis = connectRedis('redis://127.0.0.1:16379');
  const prefix = `test-mails-${tag()}`;
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    await redis.quit();
  });

  it('gives back each mail as its head followed by the attachments part its result\'s mails share', async () => {
    const writer = new MailStore(redis, prefix);
    const reader = new MailStore(redis, prefix);
    const attachments = Buffer.from('\r\n--b\r\nContent-Type: application/pdf\r\n\r\nJVBERi0=\r\n--b--\r\n');
    await Promise.all([writer.put('m-ps', Buffer.from('Subject: ps\r\n\r\n--b\r\ntext ps')), writer.put('m-pat', Buffer.from('Subject: pat\r\n\r\n--b\r\ntext pat')), writer.putAttachments('a1', attachments)]);
    expect((await reader.message('m-ps', 'a1')).toString()).toBe(`Subject: ps\r\n\r\n--b\r\ntext ps${attachments.toString()}`);
    // The part is read once for the mails that share it: the second mail is whole even once the key is gone.
    await redis.del(`${prefix}:mail-attachments:a1`);
    expect((await reader.message('m-pat', 'a1')).toString()).toBe(`Subject: pat\r\n\r\n--b\r\ntext pat${attachments.toString()}`);
    // A mail stored whole (no attachments part) reads as it is.
    await writer.put('m-whole', Buffer.from('Subject: whole\r\n\r\nbody'));
    expect((await reader.message('m-whole')).toString()).toBe('Subject: whole\r\n\r\nbody');
  });

  it('says a part is missing rather than sending half a mail, and finds it once it is written', async () => {
    const store = new MailStore(redis, prefix);
    await store.put('m-late', Buffer.from('Subject: late\r\n\r\n'));
    await expect(store.message('m-late', 'a-late')).rejects.toThrow(/m-late is not in the store/);
    await store.putAttachments('a-late', Buffer.from('parts'));
    expect((await store.message('m-late', 'a-late')).toString()).toBe('Subject: late\r\n\r\nparts');
    await expect(store.message('m-never')).rejects.toThrow(/not in the store/);
  });
});
