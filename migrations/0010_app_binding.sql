-- Binding apps to a tenant. binding_states ties the return from WeChat's
-- authorisation page to the tenant and admin who left for it: the state in the
-- redirect_uri is random, stored only as its SHA-256, single-use and short-lived,
-- so an auth_code cannot be replayed into another tenant or session.
CREATE TABLE binding_states (
  id {{id}},
  tenant_id BIGINT NOT NULL,
  user_id BIGINT NOT NULL,
  state_hash VARCHAR(64) NOT NULL,
  expires_at DATETIME(6) NOT NULL,
  used_at DATETIME(6) NULL,
  created_at DATETIME(6) NOT NULL
) {{table}};
CREATE UNIQUE INDEX ux_binding_states_hash ON binding_states (state_hash);
CREATE INDEX ix_binding_states_tenant ON binding_states (tenant_id, created_at);

-- WeChat errors per app worth showing an admin (quota 45009/45011, credential
-- and configuration errors), counted over a rolling window. Platform-wide and
-- keyed by appid like wechat_tokens: a WeChat app has one owner at a time.
CREATE TABLE wechat_api_errors (
  id {{id}},
  app_id VARCHAR(64) NOT NULL,
  code INT NOT NULL,
  recent_count BIGINT NOT NULL,
  window_start DATETIME(6) NOT NULL,
  last_at DATETIME(6) NOT NULL
) {{table}};
CREATE UNIQUE INDEX ux_wechat_api_errors_app_code ON wechat_api_errors (app_id, code);
