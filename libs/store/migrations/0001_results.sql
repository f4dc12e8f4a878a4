-- The record of every result received: written before the producer's ACK (or the Kafka commit).

-- Content-addressed bodies (the HL7 text of a result, later its documents and mails): stored once, whoever refers
-- to them. `content` is emptied when retention prunes it; the row stays as the proof of what was held.
create table bodies (
  sha256 bytea primary key,
  media_type text not null,
  size integer not null,
  content bytea,
  created_at timestamptz not null default now(),
  pruned_at timestamptz
);

create table results (
  id bigint generated always as identity primary key,
  -- The id the queues, the status records and the API use (r-<24 hex>).
  result_id text not null unique,
  source text not null,
  transport text not null check (transport in ('mllp', 'kafka')),
  sending_application text not null,
  sending_facility text not null,
  control_id text not null,
  -- SHA-256 of the message as received, MSH-7 (when it was sent) left out: a producer that sends the same message
  -- again after a lost ACK, even with a fresh timestamp, finds this row; a reused MSH-10 with other content does not.
  content_sha256 bytea not null,
  hl7_sha256 bytea not null references bodies (sha256),
  message_type text not null,
  action text not null,
  document_code text not null,
  patient_ins text,
  received_at timestamptz not null,
  acknowledged_at timestamptz not null default now(),
  unique (source, sending_facility, control_id, content_sha256)
);

create index results_received on results (received_at desc, id desc);
create index results_control_id on results (control_id);
create index results_patient_ins on results (patient_ins, received_at desc) where patient_ins is not null;
