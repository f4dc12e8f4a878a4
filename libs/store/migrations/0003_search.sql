-- Search (the operator console, GET /api/v1/results): the patient's name, and an index for every filter, so that any
-- search reads a page of results newest first without going through all those that match.

-- The name as received (PID-5) and the key it is found by, written by the intake (searchKey in libs/store/src/search.ts:
-- "family given", lower case, accents and punctuation removed). Computed in TypeScript, not here: the unaccent
-- extension may not be available to the gateway's user.
alter table results
  add column patient_family text,
  add column patient_given text,
  add column patient_search text;

-- A prefix of the key (like 'dupon%'), whatever the database's collation. Names are skewed (a few are common): with
-- 500 buckets instead of 100, the planner tells a prefix of a thousand results from one of ten.
create index results_patient_search on results (patient_search text_pattern_ops) where patient_search is not null;
alter table results alter column patient_search set statistics 500;
-- A source or a document code keeps many results: each is read newest first from its own index.
create index results_source on results (source, received_at desc, id desc);
create index results_document_code on results (document_code, received_at desc, id desc);

-- Each recipient carries its result's place in that order (reception time, row id), copied when it is created, so
-- that "the results with a recipient in this state, or at this address" is one index read in order, and stops at
-- the end of the page: a busy practitioner has tens of thousands of recipients.
alter table deliveries
  add column received_at timestamptz,
  add column result_row bigint;

update deliveries d set received_at = r.received_at, result_row = r.id from results r where r.result_id = d.result_id;

-- The result is recorded before its recipients (the intake commits it before the router sees it). A recipient whose
-- result is not recorded (a routing job that could not be read) keeps nulls, and these two filters do not find it.
create function deliveries_result_order() returns trigger language plpgsql as $$
begin
  select r.received_at, r.id into new.received_at, new.result_row from results r where r.result_id = new.result_id;
  return new;
end $$;

create trigger deliveries_result_order before insert on deliveries
  for each row execute function deliveries_result_order();

create index deliveries_state on deliveries (state, received_at desc, result_row desc);
create index deliveries_recipient on deliveries (lower(recipient), received_at desc, result_row desc);
-- The other way round: from a few results (one patient, one name) to their recipients.
create index deliveries_result_row on deliveries (result_row, state);
-- A result has a few recipients (2.5 on average). ANALYZE's sample sees almost none of a result's recipients
-- together and guesses about 10, which makes "from a few results to their recipients" look dearer than it is.
alter table deliveries alter column result_row set (n_distinct = -0.4);
