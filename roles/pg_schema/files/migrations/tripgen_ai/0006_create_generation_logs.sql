-- tripgen_ai: one row per model call, partitioned by month on created_at (seed 004, section 2:
-- llm_calls, monthly, kept 6 months). Partitions are made and retired by pg_partman: list the
-- table in pg_schema_partitions. The primary key must include the partition key.
CREATE TABLE ai_schema.ai_generation_logs (
    id              BIGINT GENERATED ALWAYS AS IDENTITY,
    request_id      VARCHAR(36) NOT NULL,
    ai_model        VARCHAR(50) NOT NULL,
    prompt_tokens   INTEGER,
    output_tokens   INTEGER,
    latency_ms      INTEGER,
    status          VARCHAR(20) NOT NULL,
    created_at      TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (id, created_at),
    CONSTRAINT chk_ai_generation_logs_status CHECK (status IN ('SUCCEEDED', 'FAILED', 'TIMEOUT'))
) PARTITION BY RANGE (created_at);

CREATE INDEX idx_ai_generation_logs_request_id ON ai_schema.ai_generation_logs (request_id);

COMMENT ON TABLE ai_schema.ai_generation_logs IS 'AI 모델 호출 로그 (월별 파티션, pg_partman)';
