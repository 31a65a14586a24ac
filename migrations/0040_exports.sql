-- CSV exports of customers (issue 7). Every export is a row: what was asked
-- (shape, the list filter as its URL query, file options), who asked, how it
-- was delivered and how many rows left. A small export streams straight to
-- the browser (delivery "stream"); a large one runs as a background job
-- (delivery "job", job_id) whose file is stored in export_chunks.
CREATE TABLE exports (
  id {{id}},
  tenant_id BIGINT NOT NULL,
  shape VARCHAR(16) NOT NULL,
  filter VARCHAR(1024) NOT NULL,
  bom BOOLEAN NOT NULL,
  machine_names BOOLEAN NOT NULL,
  locale VARCHAR(8) NOT NULL,
  delivery VARCHAR(8) NOT NULL,
  state VARCHAR(16) NOT NULL,
  job_id BIGINT NULL,
  expected_rows BIGINT NOT NULL,
  row_count BIGINT NOT NULL,
  customer_count BIGINT NOT NULL,
  bytes BIGINT NOT NULL,
  error VARCHAR(500) NOT NULL,
  created_by BIGINT NOT NULL,
  actor VARCHAR(254) NOT NULL,
  created_at DATETIME(6) NOT NULL,
  finished_at DATETIME(6) NULL,
  expires_at DATETIME(6) NULL,
  updated_at DATETIME(6) NOT NULL
) {{table}};
-- The Exports page, newest first.
CREATE INDEX ix_exports_tenant ON exports (tenant_id, id);
-- The sweeper: stored files past their expiry.
CREATE INDEX ix_exports_expires ON exports (expires_at);

-- A job's file, in the database rather than on an instance's disk, so any
-- instance serves the download and nothing else needs to be shared or backed
-- up. One chunk per batch the job wrote (about a megabyte of CSV before
-- compression), deflated; the download inflates them in order.
CREATE TABLE export_chunks (
  id {{id}},
  tenant_id BIGINT NOT NULL,
  export_id BIGINT NOT NULL,
  seq INT NOT NULL,
  data MEDIUMBLOB NOT NULL
) {{table}};
CREATE UNIQUE INDEX ux_export_chunks_seq ON export_chunks (export_id, seq);
