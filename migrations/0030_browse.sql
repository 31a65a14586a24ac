-- Browsing customers and the dashboard (issue 6).
--
-- Each customer carries three bitmasks summarising its identities, so that list
-- filters and the dashboard's overlap between apps read customers only, never
-- a join over identities:
--   app_mask  bit b set: the customer has an identity in the app whose mask_bit is b
--   sub_mask  bit b set: that identity follows (subscribed)
--   src_mask  the sources its identities were first seen by (models.sourceBits)
-- An app's bit (0–62) is given on first use; apps beyond 63 in one tenant get
-- none and are filtered through identities instead. models.RefreshCustomerMasks
-- keeps the masks in step wherever identities change.
ALTER TABLE apps ADD COLUMN mask_bit INT NULL;
CREATE UNIQUE INDEX ux_apps_tenant_mask_bit ON apps (tenant_id, mask_bit);

ALTER TABLE customers ADD COLUMN app_mask BIGINT NOT NULL DEFAULT 0;
ALTER TABLE customers ADD COLUMN sub_mask BIGINT NOT NULL DEFAULT 0;
ALTER TABLE customers ADD COLUMN src_mask INT NOT NULL DEFAULT 0;

-- The customer list walks one of these in its sort order and tests every
-- filter inside the index (they cover all filter columns), so a page of 50 is
-- read from the index and only its rows are fetched. They supersede
-- ix_customers_tenant_last_seen and ix_customers_tenant_first_seen, which are
-- prefixes of them.
CREATE INDEX ix_customers_browse_last_seen ON customers
  (tenant_id, last_seen_at, id, first_seen_at, open_account_id, app_mask, sub_mask, src_mask, nickname);
CREATE INDEX ix_customers_browse_first_seen ON customers
  (tenant_id, first_seen_at, id, last_seen_at, open_account_id, app_mask, sub_mask, src_mask, nickname);
-- Nickname prefix search when few customers match.
CREATE INDEX ix_customers_tenant_nickname ON customers (tenant_id, nickname);

-- The dashboard's figures, computed in one consistent read and kept with the
-- time they are "as of"; a large tenant's are refreshed in the background.
CREATE TABLE dashboard_snapshots (
  id {{id}},
  tenant_id BIGINT NOT NULL,
  computed_at DATETIME(6) NOT NULL,
  took_ms INT NOT NULL,
  body MEDIUMTEXT NOT NULL,
  refreshing_until DATETIME(6) NULL,
  created_at DATETIME(6) NOT NULL,
  updated_at DATETIME(6) NOT NULL
) {{table}};
CREATE UNIQUE INDEX ux_dashboard_snapshots_tenant ON dashboard_snapshots (tenant_id);
