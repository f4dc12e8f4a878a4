-- A conversation's closing mail (mssgw patient close) is filed under its closing id `c-…`, with no result row; the
-- hourly prune finds those over through this index instead of reading every recipient (a LIKE prefix cannot use
-- the primary key's order under most collations).
create index deliveries_closings on deliveries (updated_at) where result_id like 'c-%';
