-- Every body lives here, not in Redis: the documents a result carries, the mails the router renders, and what the
-- router reads of a result. Redis then holds only jobs that name rows, and losing it costs time, never data.

-- Which bodies each result holds (its HL7 text, its documents, its mails' attachments parts). A body is shared by the
-- results that carry the same bytes; retention empties it once none of those still needs it.
create table result_bodies (
  result_id text not null,
  sha256 bytea not null references bodies (sha256),
  primary key (result_id, sha256)
);
create index result_bodies_sha256 on result_bodies (sha256);

-- The result as the intake read it (libs/hl7 readResult, its documents replaced by their SHA-256): what the router
-- routes, without parsing the message again. Emptied with the bodies.
alter table results
  add column normalized json,
  add column bodies_pruned_at timestamptz;

-- Each mail as the router rendered it once for all its recipients and retries: its head (headers and text) here,
-- its attachments part a body shared by the result's mails.
create table mails (
  mail_id text primary key,
  result_id text not null,
  head bytea,
  attachments_sha256 bytea references bodies (sha256),
  created_at timestamptz not null default now()
);
create index mails_result on mails (result_id);

-- The DSN ENVID of a delivery: random (122 bits), so a receipt naming it comes from the operator that saw the
-- envelope, never from someone who guessed the id (delivery ids are hashes of what a co-recipient can read).
alter table deliveries
  add column envelope_id text not null default replace(gen_random_uuid()::text, '-', '');
create unique index deliveries_envelope on deliveries (envelope_id);
-- The sweeper's view: recipients still waiting to be sent, oldest first.
create index deliveries_queued on deliveries (updated_at) where state = 'queued';
-- And results not routed yet.
create index results_unrouted on results (received_at) where routed_at is null and duplicate_of is null;
