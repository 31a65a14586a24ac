-- The customer list filtered by a source few customers hold (OAuth, the
-- mini-program, an import) reads these instead of walking the sort order
-- for the rare entries (models.planSource): for each src_mask value the
-- customers are in sort order, so a page is the next entries of a range.
-- Narrow on purpose: a follower sync changes src_mask and the seen times of
-- many customers, and every index here is written with them.
CREATE INDEX ix_customers_source_last_seen ON customers (tenant_id, src_mask, last_seen_at, id);
CREATE INDEX ix_customers_source_first_seen ON customers (tenant_id, src_mask, first_seen_at, id);
