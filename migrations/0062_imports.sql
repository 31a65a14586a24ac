-- A CSV import too large to write in one request runs as a job (jobs table,
-- kind "import"). Its rows, validated before the job was queued, wait here in
-- chunks; the job's checkpoint is the next chunk, and the chunks go when the
-- job ends.
CREATE TABLE import_chunks (
  id {{id}},
  tenant_id BIGINT NOT NULL,
  job_id BIGINT NOT NULL,
  seq INT NOT NULL,
  rows_count INT NOT NULL,
  data MEDIUMBLOB NOT NULL,
  created_at DATETIME(6) NOT NULL
) {{table}};
CREATE UNIQUE INDEX ux_import_chunks_job_seq ON import_chunks (job_id, seq);
CREATE INDEX ix_import_chunks_tenant ON import_chunks (tenant_id, job_id);
