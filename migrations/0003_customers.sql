-- The WeChat side of a tenant: open-platform accounts, apps, and the unified
-- customers that identities (app, openid) resolve into.
CREATE TABLE open_accounts (
  id {{id}},
  tenant_id BIGINT NOT NULL,
  open_appid VARCHAR(32) NOT NULL,
  principal_name VARCHAR(200) NOT NULL,
  verified BOOLEAN NOT NULL,
  declared BOOLEAN NOT NULL,
  created_via VARCHAR(16) NOT NULL,
  created_at DATETIME(6) NOT NULL,
  updated_at DATETIME(6) NOT NULL
) {{table}};
CREATE UNIQUE INDEX ux_open_accounts_open_appid ON open_accounts (open_appid);
CREATE INDEX ix_open_accounts_tenant ON open_accounts (tenant_id);

CREATE TABLE apps (
  id {{id}},
  tenant_id BIGINT NOT NULL,
  appid VARCHAR(32) NOT NULL,
  bound_appid VARCHAR(32) NULL,
  kind VARCHAR(16) NOT NULL,
  name VARCHAR(200) NOT NULL,
  principal_name VARCHAR(200) NOT NULL,
  verify_type INT NOT NULL,
  declared BOOLEAN NOT NULL,
  binding_mode VARCHAR(16) NOT NULL,
  status VARCHAR(16) NOT NULL,
  open_account_id BIGINT NULL,
  gh_id VARCHAR(32) NOT NULL,
  callback_key VARCHAR(32) NOT NULL,
  secret_sealed BLOB NULL,
  callback_token_sealed BLOB NULL,
  aes_key_sealed BLOB NULL,
  follower_count BIGINT NOT NULL,
  last_sync_at DATETIME(6) NULL,
  unbound_at DATETIME(6) NULL,
  created_at DATETIME(6) NOT NULL,
  updated_at DATETIME(6) NOT NULL
) {{table}};
CREATE UNIQUE INDEX ux_apps_bound_appid ON apps (bound_appid);
CREATE UNIQUE INDEX ux_apps_callback_key ON apps (callback_key);
CREATE INDEX ix_apps_tenant ON apps (tenant_id, appid);

CREATE TABLE customers (
  id {{id}},
  tenant_id BIGINT NOT NULL,
  open_account_id BIGINT NULL,
  unionid VARCHAR(64) NULL,
  unlinked_reason VARCHAR(24) NULL,
  nickname VARCHAR(100) NOT NULL,
  avatar_url VARCHAR(512) NOT NULL,
  profile_at DATETIME(6) NULL,
  first_seen_at DATETIME(6) NOT NULL,
  last_seen_at DATETIME(6) NOT NULL,
  created_at DATETIME(6) NOT NULL,
  updated_at DATETIME(6) NOT NULL
) {{table}};
CREATE UNIQUE INDEX ux_customers_namespace_unionid ON customers (open_account_id, unionid);
-- Listing indexes (by tenant and last or first seen) come with 0030_browse; a
-- follower sync inserts a customer per new follower, so every index here costs.

CREATE TABLE identities (
  id {{id}},
  tenant_id BIGINT NOT NULL,
  app_id BIGINT NOT NULL,
  customer_id BIGINT NOT NULL,
  openid VARCHAR(64) NOT NULL,
  unionid VARCHAR(64) NULL,
  -- The customer's namespace and unlinked reason, copied so that resolving a
  -- batch reads identities alone (models.Resolve keeps them in step).
  open_account_id BIGINT NULL,
  unlinked_reason VARCHAR(24) NULL,
  subscribed BOOLEAN NOT NULL,
  subscribe_time DATETIME(6) NULL,
  subscribe_scene VARCHAR(64) NOT NULL,
  unsubscribed_at DATETIME(6) NULL,
  source VARCHAR(16) NOT NULL,
  nickname VARCHAR(100) NOT NULL,
  avatar_url VARCHAR(512) NOT NULL,
  profile_at DATETIME(6) NULL,
  first_seen_at DATETIME(6) NOT NULL,
  last_seen_at DATETIME(6) NOT NULL,
  last_sync_pass BIGINT NOT NULL DEFAULT 0,
  created_at DATETIME(6) NOT NULL,
  updated_at DATETIME(6) NOT NULL
) {{table}};
CREATE UNIQUE INDEX ux_identities_app_openid ON identities (app_id, openid);
CREATE INDEX ix_identities_tenant_customer ON identities (tenant_id, customer_id);
-- Followers of an app (dashboard counts) and the end-of-pass sweep that marks
-- followers a full sync did not list; ordered by id within (app, subscribed).
CREATE INDEX ix_identities_app_subscribed ON identities (app_id, subscribed);

CREATE TABLE customer_events (
  id {{id}},
  tenant_id BIGINT NOT NULL,
  customer_id BIGINT NOT NULL,
  kind VARCHAR(24) NOT NULL,
  app_id BIGINT NULL,
  openid VARCHAR(64) NOT NULL,
  detail VARCHAR(255) NOT NULL,
  occurred_at DATETIME(6) NOT NULL,
  created_at DATETIME(6) NOT NULL
) {{table}};
CREATE INDEX ix_customer_events_customer ON customer_events (tenant_id, customer_id, occurred_at);
