-- tripgen_ai: updated_at, expiry and request_id triggers (seed 002, section 6).
CREATE TRIGGER update_ai_schedules_updated_at
    BEFORE UPDATE ON ai_schema.ai_schedules
    FOR EACH ROW EXECUTE FUNCTION ai_schema.update_updated_at_column();

CREATE TRIGGER update_ai_jobs_updated_at
    BEFORE UPDATE ON ai_schema.ai_jobs
    FOR EACH ROW EXECUTE FUNCTION ai_schema.update_updated_at_column();

CREATE TRIGGER update_ai_recommendations_updated_at
    BEFORE UPDATE ON ai_schema.ai_recommendations
    FOR EACH ROW EXECUTE FUNCTION ai_schema.update_updated_at_column();

-- A generated schedule without expiry expires 7 days after generation.
CREATE OR REPLACE FUNCTION ai_schema.set_schedule_expiry()
RETURNS TRIGGER AS $$
BEGIN
    IF NEW.expired_at IS NULL AND NEW.generated_at IS NOT NULL THEN
        NEW.expired_at = NEW.generated_at + INTERVAL '7 days';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER set_ai_schedules_expiry
    BEFORE INSERT OR UPDATE ON ai_schema.ai_schedules
    FOR EACH ROW EXECUTE FUNCTION ai_schema.set_schedule_expiry();

-- A recommendation without expiry expires 24 hours after creation.
CREATE OR REPLACE FUNCTION ai_schema.set_recommendation_expiry()
RETURNS TRIGGER AS $$
BEGIN
    IF NEW.expired_at IS NULL THEN
        NEW.expired_at = NEW.created_at + INTERVAL '24 hours';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER set_ai_recommendations_expiry
    BEFORE INSERT ON ai_schema.ai_recommendations
    FOR EACH ROW EXECUTE FUNCTION ai_schema.set_recommendation_expiry();

-- request_id defaults to a random UUID (gen_random_uuid() is built into PostgreSQL 13+).
CREATE OR REPLACE FUNCTION ai_schema.generate_request_id()
RETURNS TRIGGER AS $$
BEGIN
    IF NEW.request_id IS NULL THEN
        NEW.request_id = gen_random_uuid()::VARCHAR(36);
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER generate_ai_schedules_request_id
    BEFORE INSERT ON ai_schema.ai_schedules
    FOR EACH ROW EXECUTE FUNCTION ai_schema.generate_request_id();

CREATE TRIGGER generate_ai_jobs_request_id
    BEFORE INSERT ON ai_schema.ai_jobs
    FOR EACH ROW EXECUTE FUNCTION ai_schema.generate_request_id();
