-- A nickname prefix too common to count but too rare to find quickly by
-- walking the sort order (a surname: a few thousand of a million customers)
-- is read whole from the nickname index and sorted (models.planPrefix). With
-- both seen times in the index, that read, the page's keyset and any
-- seen-date bounds need no row: a page of such a prefix sorted by last seen
-- costs about two thirds of the walk, and sorted by first seen (whose index
-- does not hold the nickname) a small part of it.
{{mysql}} ALTER TABLE customers DROP INDEX ix_customers_tenant_nickname,
  ADD INDEX ix_customers_tenant_nickname (tenant_id, nickname, last_seen_at, first_seen_at, id);
{{sqlite}} DROP INDEX ix_customers_tenant_nickname;
{{sqlite}} CREATE INDEX ix_customers_tenant_nickname ON customers (tenant_id, nickname, last_seen_at, first_seen_at, id);
