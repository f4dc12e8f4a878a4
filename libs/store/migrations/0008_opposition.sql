-- The patient's opposition (issue #25): to mails to the patient, and to mails about them to professionals, recorded
-- separately, each with its date and the identifier it was recorded under. The router refuses by it, and the
-- dispatcher checks it again just before sending (the delivery's outbound statement, libs/store/src/bodies.ts).

create table oppositions (
  id bigint generated always as identity primary key,
  -- ins: the INS (PID-3, INS-NIR/NIA OID). ipp: the facility's own patient id, meaningful only with `facility`, the
  -- facility that assigned it (matched against the result's sending facility, MSH-4). any: an id from an opposition
  -- file of the old format (one bare id per line), matched as an INS or as an IPP of any facility, as before.
  id_type text not null check (id_type in ('ins', 'ipp', 'any')),
  patient_id text not null,
  facility text not null default '' check ((id_type = 'ipp') = (facility <> '')),
  -- patient: no mail to the patient; professionals: no mail about the patient to practitioners and organisations.
  direction text not null check (direction in ('patient', 'professionals')),
  -- When the patient expressed it (as recorded by the facility), and when the gateway recorded it.
  opposed_at timestamptz not null,
  recorded_at timestamptz not null default now(),
  -- Who recorded it: 'file' (routing.patientOpposition.file, kept in step with the file), 'cli', 'api'.
  origin text not null,
  unique (id_type, patient_id, facility, direction)
);
-- The router and the dispatcher look a patient up by INS or by IPP: both are in patient_id.
create index oppositions_patient on oppositions (patient_id);
