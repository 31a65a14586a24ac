-- Scheduled follower syncs: an admin may have an official account synced
-- every N hours. next_run_at moves forward by compare-and-set, so of several
-- instances polling at once only one enqueues the sync.
CREATE TABLE sync_schedules (
  id {{id}},
  tenant_id BIGINT NOT NULL,
  app_id BIGINT NOT NULL,
  enabled BOOLEAN NOT NULL,
  every_hours INT NOT NULL,
  next_run_at DATETIME(6) NULL,
  updated_by BIGINT NOT NULL,
  created_at DATETIME(6) NOT NULL,
  updated_at DATETIME(6) NOT NULL
) {{table}};
CREATE UNIQUE INDEX ux_sync_schedules_app ON sync_schedules (app_id);
CREATE INDEX ix_sync_schedules_due ON sync_schedules (enabled, next_run_at);
