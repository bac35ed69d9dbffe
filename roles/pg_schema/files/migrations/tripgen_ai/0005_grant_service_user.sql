-- tripgen_ai: privileges of the service user ai_service (seed 002, section 8), narrowed to what
-- a service needs: seed 002 grants ALL (which includes TRUNCATE, REFERENCES, TRIGGER, and with
-- schema ownership DROP); here it gets DML only, now and on what later migrations create.
-- ai_service must exist before this runs: create it with pg_schema_users (password from Vault).
GRANT USAGE ON SCHEMA ai_schema TO ai_service;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ai_schema TO ai_service;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA ai_schema TO ai_service;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA ai_schema TO ai_service;

ALTER DEFAULT PRIVILEGES IN SCHEMA ai_schema GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ai_service;
ALTER DEFAULT PRIVILEGES IN SCHEMA ai_schema GRANT USAGE, SELECT ON SEQUENCES TO ai_service;
ALTER DEFAULT PRIVILEGES IN SCHEMA ai_schema GRANT EXECUTE ON FUNCTIONS TO ai_service;
