-- Access control and audit trail of the HTTP API (issue #22). libs/auth reads and writes these tables.

-- API keys: a key is shown once when it is created; only its SHA-256 is kept (a key is 256 random bits, so a plain
-- hash cannot be reversed by guessing). A revoked key stays listed, with when it was revoked.
create table api_keys (
  key_id text primary key,
  name text not null,
  role text not null check (role in ('viewer', 'operator', 'admin')),
  key_sha256 text not null,
  created_at timestamptz not null default now(),
  created_by text not null,
  revoked_at timestamptz,
  last_used_at timestamptz
);

-- Every read of patient data, every action and every refusal: who (a key id or an OIDC subject), when, the route,
-- the ids it read or acted on, the client's address, and whether it was allowed. Ids only: never a name, an INS, an
-- address or a search's values (a search keeps the names of its filters).
create table audit_events (
  id bigint generated always as identity primary key,
  at timestamptz not null default now(),
  actor_kind text not null check (actor_kind in ('key', 'oidc', 'none')),
  actor text,
  role text,
  method text not null,
  route text not null,
  status integer not null,
  outcome text not null check (outcome in ('allowed', 'refused')),
  reason text,
  ids text[] not null default '{}',
  filters text[] not null default '{}',
  client text not null,
  request_id text not null
);
-- Newest first, page by page (keyset on at, id), alone or for one actor, and the retention's prune by time.
create index audit_events_at on audit_events (at desc, id desc);
create index audit_events_actor on audit_events (actor, at desc, id desc);
-- "Who read this result?": the ids the events name.
create index audit_events_ids on audit_events using gin (ids);
