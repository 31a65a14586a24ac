-- Background jobs (follower syncs, CSV imports, exports): one row per run,
-- claimed by one instance at a time through a lease in the row itself.
--
-- active_key is "tenant:kind:subject" while the job is queued or running and
-- NULL once it has ended: its unique index is what allows one live job per
-- subject (one sync per app) across every instance. lease_owner and
-- lease_until say which instance runs it and until when; the runner renews the
-- lease while it works, and a job whose lease ran out (its instance died) is
-- claimed again and resumes from checkpoint, which the job writes in the same
-- transaction as the work it describes.
CREATE TABLE jobs (
  id {{id}},
  tenant_id BIGINT NOT NULL,
  kind VARCHAR(32) NOT NULL,
  subject VARCHAR(64) NOT NULL,
  active_key VARCHAR(128) NULL,
  state VARCHAR(16) NOT NULL,
  params TEXT NOT NULL,
  checkpoint TEXT NOT NULL,
  processed BIGINT NOT NULL,
  total BIGINT NOT NULL,
  rate DOUBLE NOT NULL,
  cancel_requested BOOLEAN NOT NULL,
  cancelled_by VARCHAR(254) NOT NULL,
  lease_owner VARCHAR(64) NOT NULL,
  lease_until DATETIME(6) NULL,
  attempts INT NOT NULL,
  run_after DATETIME(6) NOT NULL,
  error_kind VARCHAR(16) NOT NULL,
  error_code INT NOT NULL,
  error VARCHAR(500) NOT NULL,
  result TEXT NOT NULL,
  created_by BIGINT NOT NULL,
  actor VARCHAR(254) NOT NULL,
  created_at DATETIME(6) NOT NULL,
  started_at DATETIME(6) NULL,
  heartbeat_at DATETIME(6) NULL,
  finished_at DATETIME(6) NULL,
  updated_at DATETIME(6) NOT NULL
) {{table}};
CREATE UNIQUE INDEX ux_jobs_active ON jobs (active_key);
-- The latest jobs of a subject (an app's sync history, its progress bar).
CREATE INDEX ix_jobs_subject ON jobs (tenant_id, kind, subject, id);
-- What runners poll for: live jobs that are due.
CREATE INDEX ix_jobs_state ON jobs (state, run_after);
