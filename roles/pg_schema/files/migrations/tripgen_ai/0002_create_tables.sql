-- tripgen_ai: the three tables, their constraints and comments (seed 002, section 4).
CREATE TABLE ai_schema.ai_schedules (
    id                  BIGSERIAL PRIMARY KEY,
    request_id          VARCHAR(36) UNIQUE NOT NULL,
    trip_id             VARCHAR(36) NOT NULL,
    status              VARCHAR(20) NOT NULL,
    schedule_data       JSONB,
    generated_at        TIMESTAMP WITH TIME ZONE,
    expired_at          TIMESTAMP WITH TIME ZONE,
    created_at          TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at          TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT chk_ai_schedules_status CHECK (status IN ('QUEUED', 'PROCESSING', 'COMPLETED', 'FAILED', 'CANCELLED')),
    CONSTRAINT chk_ai_schedules_expiry CHECK (expired_at > generated_at OR expired_at IS NULL)
);

COMMENT ON TABLE ai_schema.ai_schedules IS 'AI 생성 여행 일정 저장 테이블';
COMMENT ON COLUMN ai_schema.ai_schedules.request_id IS '일정 생성 요청 고유 식별자';
COMMENT ON COLUMN ai_schema.ai_schedules.trip_id IS 'Trip 서비스의 여행 ID';
COMMENT ON COLUMN ai_schema.ai_schedules.schedule_data IS '생성된 일정 JSON 데이터';
COMMENT ON COLUMN ai_schema.ai_schedules.expired_at IS '캐시 만료 시간 (NULL이면 영구 보존)';

CREATE TABLE ai_schema.ai_jobs (
    id                  BIGSERIAL PRIMARY KEY,
    request_id          VARCHAR(36) UNIQUE NOT NULL,
    job_type            VARCHAR(30) NOT NULL,
    status              VARCHAR(20) NOT NULL,
    payload             JSONB NOT NULL,
    result              JSONB,
    progress            INTEGER NOT NULL DEFAULT 0,
    current_step        VARCHAR(100),
    error_message       TEXT,
    started_at          TIMESTAMP WITH TIME ZONE,
    completed_at        TIMESTAMP WITH TIME ZONE,
    created_at          TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at          TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT chk_ai_jobs_type CHECK (job_type IN ('SCHEDULE_GENERATION', 'SCHEDULE_REGENERATION', 'RECOMMENDATION_GENERATION', 'WEATHER_IMPACT_ANALYSIS')),
    CONSTRAINT chk_ai_jobs_status CHECK (status IN ('QUEUED', 'PROCESSING', 'COMPLETED', 'FAILED', 'CANCELLED')),
    CONSTRAINT chk_ai_jobs_progress CHECK (progress >= 0 AND progress <= 100)
);

COMMENT ON TABLE ai_schema.ai_jobs IS 'AI 작업 관리 테이블';
COMMENT ON COLUMN ai_schema.ai_jobs.job_type IS '작업 유형 (일정생성/재생성/추천/날씨분석)';
COMMENT ON COLUMN ai_schema.ai_jobs.payload IS '작업 입력 매개변수 JSON';
COMMENT ON COLUMN ai_schema.ai_jobs.result IS '작업 결과 JSON';
COMMENT ON COLUMN ai_schema.ai_jobs.progress IS '작업 진행률 (0-100%)';
COMMENT ON COLUMN ai_schema.ai_jobs.current_step IS '현재 처리 중인 단계 설명';

-- expired_at is NOT NULL but has no default: the trigger in 0004 fills it (created_at + 24 hours).
CREATE TABLE ai_schema.ai_recommendations (
    id                     BIGSERIAL PRIMARY KEY,
    place_id               VARCHAR(100) NOT NULL,
    profile_hash           VARCHAR(64) NOT NULL,
    recommendation_data    JSONB NOT NULL,
    generated_at           TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    expired_at             TIMESTAMP WITH TIME ZONE NOT NULL,
    created_at             TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at             TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT chk_ai_recommendations_expiry CHECK (expired_at > created_at),
    CONSTRAINT uk_ai_recommendations_place_profile UNIQUE (place_id, profile_hash)
);

COMMENT ON TABLE ai_schema.ai_recommendations IS 'AI 생성 장소 추천 정보 저장 테이블';
COMMENT ON COLUMN ai_schema.ai_recommendations.place_id IS 'Location 서비스의 장소 ID';
COMMENT ON COLUMN ai_schema.ai_recommendations.profile_hash IS '사용자 프로파일 해시 (캐시 키)';
COMMENT ON COLUMN ai_schema.ai_recommendations.recommendation_data IS '추천 이유 및 팁 JSON 데이터';
COMMENT ON COLUMN ai_schema.ai_recommendations.expired_at IS '추천 정보 만료 시간';
