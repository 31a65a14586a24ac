-- The inbox of official-account pushes (subscribe, unsubscribe, SCAN). A push
-- is stored here first, in a small insert, and answered "success"; a worker
-- then resolves the stored events in batches. The unique key is how WeChat's
-- retries (3 attempts of the same push) are stored once: (app, FromUserName,
-- CreateTime, Event). Rows stay a day after processing, long enough to catch
-- any retry, then are purged.
CREATE TABLE callback_events (
  id {{id}},
  tenant_id BIGINT NOT NULL,
  app_id BIGINT NOT NULL,
  dedup_key VARCHAR(128) NOT NULL,
  openid VARCHAR(64) NOT NULL,
  event VARCHAR(32) NOT NULL,
  event_key VARCHAR(128) NOT NULL,
  create_time BIGINT NOT NULL,
  state SMALLINT NOT NULL,
  claim VARCHAR(32) NOT NULL,
  lease_until DATETIME(6) NULL,
  attempts INT NOT NULL,
  error VARCHAR(255) NOT NULL,
  received_at DATETIME(6) NOT NULL,
  processed_at DATETIME(6) NULL
) {{table}};
CREATE UNIQUE INDEX ux_callback_events_dedup ON callback_events (app_id, dedup_key);
-- The worker's queue: pending rows (state 0) in arrival order.
CREATE INDEX ix_callback_events_state ON callback_events (state, id);
CREATE INDEX ix_callback_events_received ON callback_events (received_at);
