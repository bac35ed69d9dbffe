-- tripgen_ai: schema, extensions and the shared updated_at function (seed 002, sections 3.2 and 4.1).
-- The schema belongs to the migration runner, not to the service user: ai_service gets DML
-- through grants (0005) and cannot drop or alter what the migrations own.
CREATE EXTENSION IF NOT EXISTS "uuid-ossp";
CREATE EXTENSION IF NOT EXISTS pgcrypto;

CREATE SCHEMA IF NOT EXISTS ai_schema;
COMMENT ON SCHEMA ai_schema IS 'AI itinerary generation service (tripgen)';

CREATE OR REPLACE FUNCTION ai_schema.update_updated_at_column()
RETURNS TRIGGER AS $$
BEGIN
    NEW.updated_at = CURRENT_TIMESTAMP;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
