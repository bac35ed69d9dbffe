-- onprem:non-transactional
-- A non-transactional migration holds exactly one statement. CONCURRENTLY keeps ai_jobs writable
-- while the index builds; if it fails, DROP INDEX CONCURRENTLY the INVALID index and re-run.
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_ai_jobs_completed_at ON ai_schema.ai_jobs (completed_at) WHERE completed_at IS NOT NULL
