-- Web OAuth in official accounts' H5 pages. An oauth_states row ties the
-- return from WeChat's authorize page to the tenant and app that sent the
-- visitor there: the state is random, stored only as its SHA-256, single-use
-- and short-lived; it also keeps the scope asked for and the checked return URL.
CREATE TABLE oauth_states (
  id {{id}},
  tenant_id BIGINT NOT NULL,
  app_id BIGINT NOT NULL,
  state_hash VARCHAR(64) NOT NULL,
  scope VARCHAR(32) NOT NULL,
  return_url VARCHAR(1024) NOT NULL,
  expires_at DATETIME(6) NOT NULL,
  used_at DATETIME(6) NULL,
  created_at DATETIME(6) NOT NULL
) {{table}};
CREATE UNIQUE INDEX ux_oauth_states_hash ON oauth_states (state_hash);
CREATE INDEX ix_oauth_states_expires ON oauth_states (expires_at);

-- Hosts an app's OAuth may return visitors to, besides OneID's own: the
-- tenant's H5 domains. Anything else is refused (no open redirects).
CREATE TABLE oauth_return_hosts (
  id {{id}},
  tenant_id BIGINT NOT NULL,
  app_id BIGINT NOT NULL,
  host VARCHAR(255) NOT NULL,
  created_at DATETIME(6) NOT NULL
) {{table}};
CREATE UNIQUE INDEX ux_oauth_return_hosts_app_host ON oauth_return_hosts (app_id, host);
CREATE INDEX ix_oauth_return_hosts_tenant ON oauth_return_hosts (tenant_id, app_id);
