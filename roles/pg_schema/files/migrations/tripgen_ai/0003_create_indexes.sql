-- tripgen_ai: performance and JSONB (GIN) indexes (seed 002, section 5).
-- Not created, on purpose: seed 002's idx_ai_schedules_request_id, idx_ai_jobs_request_id and
-- idx_ai_recommendations_place_profile duplicate the indexes behind the UNIQUE constraints of
-- 0002, and idx_ai_recommendations_place_id is the leading column of that unique index: each
-- would cost write amplification and space for no plan the existing index cannot serve.
CREATE INDEX idx_ai_schedules_trip_id ON ai_schema.ai_schedules (trip_id);
CREATE INDEX idx_ai_schedules_status ON ai_schema.ai_schedules (status);
CREATE INDEX idx_ai_schedules_expired_at ON ai_schema.ai_schedules (expired_at) WHERE expired_at IS NOT NULL;

CREATE INDEX idx_ai_jobs_status ON ai_schema.ai_jobs (status);
CREATE INDEX idx_ai_jobs_type_status ON ai_schema.ai_jobs (job_type, status);
CREATE INDEX idx_ai_jobs_created_at ON ai_schema.ai_jobs (created_at);
CREATE INDEX idx_ai_jobs_processing ON ai_schema.ai_jobs (status, started_at) WHERE status = 'PROCESSING';

CREATE INDEX idx_ai_recommendations_expired_at ON ai_schema.ai_recommendations (expired_at);
CREATE INDEX idx_ai_recommendations_generated_at ON ai_schema.ai_recommendations (generated_at);

CREATE INDEX idx_ai_schedules_schedule_day ON ai_schema.ai_schedules USING GIN ((schedule_data -> 'schedules'));
CREATE INDEX idx_ai_jobs_result_gin ON ai_schema.ai_jobs USING GIN (result);
CREATE INDEX idx_ai_recommendations_data_gin ON ai_schema.ai_recommendations USING GIN (recommendation_data);
