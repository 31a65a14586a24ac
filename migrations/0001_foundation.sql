-- Tenants, people, their memberships, sessions, sign-in throttling, the audit log
-- and API keys.
CREATE TABLE tenants (
  id {{id}},
  slug VARCHAR(64) NOT NULL,
  name VARCHAR(200) NOT NULL,
  principal_name VARCHAR(200) NOT NULL,
  status VARCHAR(16) NOT NULL,
  created_at DATETIME(6) NOT NULL,
  updated_at DATETIME(6) NOT NULL
) {{table}};
CREATE UNIQUE INDEX ux_tenants_slug ON tenants (slug);

CREATE TABLE users (
  id {{id}},
  email VARCHAR(254) NOT NULL,
  name VARCHAR(100) NOT NULL,
  password_hash VARCHAR(255) NOT NULL,
  locale VARCHAR(8) NOT NULL,
  created_at DATETIME(6) NOT NULL,
  updated_at DATETIME(6) NOT NULL
) {{table}};
CREATE UNIQUE INDEX ux_users_email ON users (email);

CREATE TABLE memberships (
  id {{id}},
  tenant_id BIGINT NOT NULL,
  user_id BIGINT NOT NULL,
  role VARCHAR(16) NOT NULL,
  created_at DATETIME(6) NOT NULL,
  updated_at DATETIME(6) NOT NULL
) {{table}};
CREATE UNIQUE INDEX ux_memberships_tenant_user ON memberships (tenant_id, user_id);
CREATE INDEX ix_memberships_user ON memberships (user_id);

CREATE TABLE invitations (
  id {{id}},
  tenant_id BIGINT NOT NULL,
  email VARCHAR(254) NOT NULL,
  role VARCHAR(16) NOT NULL,
  token_hash VARCHAR(64) NOT NULL,
  invited_by BIGINT NOT NULL,
  expires_at DATETIME(6) NOT NULL,
  accepted_at DATETIME(6) NULL,
  accepted_by BIGINT NULL,
  revoked_at DATETIME(6) NULL,
  created_at DATETIME(6) NOT NULL
) {{table}};
CREATE UNIQUE INDEX ux_invitations_token ON invitations (token_hash);
CREATE INDEX ix_invitations_tenant ON invitations (tenant_id, created_at);

CREATE TABLE sessions (
  id_hash VARCHAR(64) NOT NULL PRIMARY KEY,
  user_id BIGINT NOT NULL,
  current_tenant_id BIGINT NOT NULL,
  csrf_token VARCHAR(64) NOT NULL,
  ip VARCHAR(64) NOT NULL,
  user_agent VARCHAR(255) NOT NULL,
  created_at DATETIME(6) NOT NULL,
  last_seen_at DATETIME(6) NOT NULL
) {{table}};
CREATE INDEX ix_sessions_user ON sessions (user_id);
CREATE INDEX ix_sessions_last_seen ON sessions (last_seen_at);

CREATE TABLE login_throttles (
  throttle_key VARCHAR(300) NOT NULL PRIMARY KEY,
  failures INT NOT NULL,
  window_start DATETIME(6) NOT NULL,
  locked_until DATETIME(6) NULL
) {{table}};

CREATE TABLE audit_events (
  id {{id}},
  tenant_id BIGINT NOT NULL,
  actor_user_id BIGINT NOT NULL,
  actor VARCHAR(254) NOT NULL,
  action VARCHAR(64) NOT NULL,
  target VARCHAR(255) NOT NULL,
  detail TEXT NOT NULL,
  ip VARCHAR(64) NOT NULL,
  request_id VARCHAR(64) NOT NULL,
  created_at DATETIME(6) NOT NULL
) {{table}};
CREATE INDEX ix_audit_tenant_id ON audit_events (tenant_id, id);

CREATE TABLE api_keys (
  id {{id}},
  tenant_id BIGINT NOT NULL,
  name VARCHAR(100) NOT NULL,
  prefix VARCHAR(16) NOT NULL,
  key_hash VARCHAR(64) NOT NULL,
  created_at DATETIME(6) NOT NULL,
  last_used_at DATETIME(6) NULL,
  revoked_at DATETIME(6) NULL
) {{table}};
CREATE UNIQUE INDEX ux_api_keys_prefix ON api_keys (prefix);
CREATE INDEX ix_api_keys_tenant ON api_keys (tenant_id);
