-- WeChat tokens shared by every OneID instance: app access tokens, the component
-- token, authorizer access and refresh tokens and the component verify ticket.
-- Platform-wide (keyed by appid; the component's rows use the component appid),
-- not tenant-owned. value_sealed is AES-256-GCM with ad "wechat_tokens|<appid>|<kind>".
-- version grows with every new value so a rejected token is expired by
-- compare-and-expire; refreshes and rejections feed the "another system is
-- refreshing this AppSecret" warning.
CREATE TABLE wechat_tokens (
  id {{id}},
  app_id VARCHAR(64) NOT NULL,
  kind VARCHAR(32) NOT NULL,
  value_sealed VARBINARY(2048) NULL,
  expires_at DATETIME(6) NULL,
  version BIGINT NOT NULL,
  refreshes BIGINT NOT NULL,
  rejections BIGINT NOT NULL,
  last_refresh_at DATETIME(6) NULL,
  last_rejection_at DATETIME(6) NULL,
  created_at DATETIME(6) NOT NULL,
  updated_at DATETIME(6) NOT NULL
) {{table}};
CREATE UNIQUE INDEX ux_wechat_tokens_app_kind ON wechat_tokens (app_id, kind);
