-- The record of every recipient of every result: its state, the evidence of each change, and the outbox that tells
-- producers. The delivery lifecycle (libs/lifecycle) decides every move; these tables keep what it decided.

alter table results
  add column ack_reception boolean not null default false,
  add column ack_read boolean not null default false,
  add column routed_at timestamptz,
  -- Set when the same document and version already came in another result: nothing was sent for this one.
  add column duplicate_of text;

create table deliveries (
  delivery_id text primary key,
  -- No foreign key: a recipient refused when the routing failed may name a result by its job id alone.
  result_id text not null,
  recipient text not null,
  recipient_id text,
  kind text not null,
  state text not null,
  mail_id text,
  message_id text,
  mailbox text,
  reason text,
  detail text,
  smtp_response text,
  queue_id text,
  dsn_status text,
  dsn_at timestamptz,
  submitted_at timestamptz,
  updated_at timestamptz not null,
  -- Set while the recipient awaits its final DSN (the confirmation clock runs from submission).
  awaiting_since timestamptz
);
create index deliveries_result on deliveries (result_id);
create index deliveries_message on deliveries (lower(message_id), lower(recipient)) where message_id is not null;
create index deliveries_awaiting on deliveries (awaiting_since) where awaiting_since is not null;

-- Every event of every recipient, applied or not (a late or out-of-order receipt is kept as evidence).
create table delivery_events (
  id bigint generated always as identity primary key,
  delivery_id text not null,
  at timestamptz not null,
  state text not null,
  applied boolean not null,
  source text not null,
  detail text
);
create index delivery_events_delivery on delivery_events (delivery_id, id);

-- The outbox: each applied change, written in the same transaction, until the feedback service has told the
-- producers and deletes it. A claim that was not acknowledged in time is claimed again.
create table status_outbox (
  id bigint generated always as identity primary key,
  delivery_id text not null,
  state text not null,
  previous text not null,
  source text not null,
  claimed_by text,
  claimed_at timestamptz
);

-- The documents a result carries, by id (CDA ClinicalDocument/id or TXA-12, as root^extension).
create table result_documents (
  document_id text not null,
  result_id text not null,
  primary key (document_id, result_id)
);

-- The first result to carry a document version holds it; a later one with the same is not sent again.
create table document_versions (
  document_version text primary key,
  result_id text not null
);

-- Version numbers of wrapped documents within their set, in the order the results took them.
create table set_counters (
  set_id text primary key,
  current integer not null
);
create table set_versions (
  set_id text not null,
  result_id text not null,
  version integer not null,
  primary key (set_id, result_id)
);
