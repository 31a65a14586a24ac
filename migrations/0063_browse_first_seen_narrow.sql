-- The customer list sorted by first seen walks this index. Migration 0030
-- made it cover every filter column, like the last-seen one; but a follower
-- sync inserts each new customer at a random place in first-seen order (its
-- subscribe time), and splitting pages of nine-column entries there was the
-- costliest index work of a sync: a 200,000-follower sync took about 14 s
-- instead of 24 s without it (median of five back-to-back runs each, load
-- 5-10). The last-seen index, which a sync fills at its end, stays covering.
-- The typical first-seen views (no filter, an app, a first-seen range) find a
-- page within its first hundred entries, so testing the filters on the rows
-- costs a fraction of a millisecond; a rare filter sorted by first seen reads
-- more rows.
{{mysql}} ALTER TABLE customers DROP INDEX ix_customers_browse_first_seen,
  ADD INDEX ix_customers_browse_first_seen (tenant_id, first_seen_at, id);
{{sqlite}} DROP INDEX ix_customers_browse_first_seen;
{{sqlite}} CREATE INDEX ix_customers_browse_first_seen ON customers (tenant_id, first_seen_at, id);
