-- Versions of a wrapped document in the order the producer sent them. The intake writes each result's set key (the
-- sending application and the order or document it answers, for a result without a CDA of its own); the version of a
-- result in its set is its rank among the set's results in reception order (results.id), whatever order the routers
-- happen to finish in, and the same on every retry. set_counters and set_versions are no longer written.
alter table results add column set_key text;
create index results_set_key on results (set_key, id) where set_key is not null;
