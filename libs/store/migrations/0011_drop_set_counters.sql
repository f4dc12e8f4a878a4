-- Versions follow reception order since 0009: the old per-set counters are read and written by nothing.
drop table if exists set_counters;
drop table if exists set_versions;
