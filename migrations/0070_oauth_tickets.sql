-- A visitor's web OAuth trip ends on the tenant's page with a ticket in the
-- address (oneid_ticket=…). The address names no one: the tenant's backend
-- trades the ticket, with its API key, for who the visitor is. A ticket is
-- random, stored only as its SHA-256, single-use and short-lived.
CREATE TABLE oauth_tickets (
  id {{id}},
  tenant_id BIGINT NOT NULL,
  app_id BIGINT NOT NULL,
  customer_id BIGINT NOT NULL,
  openid VARCHAR(128) NOT NULL,
  scope VARCHAR(32) NOT NULL,
  ticket_hash VARCHAR(64) NOT NULL,
  expires_at DATETIME(6) NOT NULL,
  used_at DATETIME(6) NULL,
  created_at DATETIME(6) NOT NULL
) {{table}};
CREATE UNIQUE INDEX ux_oauth_tickets_hash ON oauth_tickets (ticket_hash);
CREATE INDEX ix_oauth_tickets_expires ON oauth_tickets (expires_at);
CREATE INDEX ix_oauth_tickets_customer ON oauth_tickets (tenant_id, customer_id);
