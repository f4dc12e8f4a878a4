-- Receipts that hold against hostile mail, and replies that are never swallowed (issues #22 and #25).

-- Every mail of a sending mailbox that is neither a DSN nor an MDN: a patient's or a practitioner's answer, an
-- auto-reply. The mail itself is a body (message/rfc822, content-addressed); this row says where it came from and
-- which result and recipient it answers. Its sender and subject are personal data: they live here and in the body,
-- never in a delivery's timeline (whose event names the reply by id), a log line or a metric.
create table replies (
  id bigint generated always as identity primary key,
  -- The applicative mailbox it arrived in.
  mailbox text not null,
  -- The recipient it answers, when its sender is one of the result's recipients; null otherwise.
  delivery_id text,
  -- The result it answers; null when nothing matched (kept and listed all the same).
  result_id text,
  received_at timestamptz not null,
  -- Its Date header, as the sender's client wrote it.
  sent_at timestamptz,
  from_address text,
  subject text,
  body_sha256 bytea not null references bodies (sha256),
  -- in-reply-to, references (the thread named one of our Message-IDs), sender (the sender's latest mail from this
  -- mailbox), none.
  matched_by text not null check (matched_by in ('in-reply-to', 'references', 'sender', 'none')),
  -- Auto-Submitted (an out-of-office): kept and listed, never forwarded.
  auto boolean not null default false,
  -- mailboxes[].forwardRepliesTo when the reply was read; forwarded_at once the operator took the copy.
  forward_to text,
  forwarded_at timestamptz,
  -- The same mail read twice (moved to Processed after a crash, or delivered twice) is one reply.
  unique (mailbox, body_sha256)
);
create index replies_delivery on replies (delivery_id) where delivery_id is not null;
create index replies_result on replies (result_id) where result_id is not null;
create index replies_received on replies (received_at desc, id desc);
create index replies_unmatched on replies (received_at desc, id desc) where result_id is null;
create index replies_forward_pending on replies (mailbox, id) where forward_to is not null and forwarded_at is null;
-- The sender fallback reads the latest deliveries to one address through deliveries_recipient (0003): no new index
-- on the hottest table.
