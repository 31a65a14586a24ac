-- The profiles export reads the OpenIDs of each batch of customers by
-- customer id. With app_id and openid in this index it reads them from the
-- index alone, instead of fetching every identity's row: about three times
-- less work at a million customers. The index keeps its name and leading
-- columns, so every query that used it (and names it) still does.
{{mysql}} ALTER TABLE identities DROP INDEX ix_identities_tenant_customer,
  ADD INDEX ix_identities_tenant_customer (tenant_id, customer_id, app_id, openid);
{{sqlite}} DROP INDEX ix_identities_tenant_customer;
{{sqlite}} CREATE INDEX ix_identities_tenant_customer ON identities (tenant_id, customer_id, app_id, openid);
