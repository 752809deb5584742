-- managed by djscale, do not edit
-- Run by psql as postgres. The role's password verifier (SCRAM-SHA-256, computed by djscale)
-- is psql's stdin, read by `cat` into :verifier and interpolated as a quoted literal
-- (:'verifier'); it never appears on a command line. PostgreSQL stores a verifier as it is:
-- the password itself is never sent.
\set ON_ERROR_STOP on
-- A failure must not show the verifier: psql prints no statement text or context, and this
-- session keeps statements out of the server log (by default an error logs its statement).
\set VERBOSITY terse
\set SHOW_CONTEXT never
SET log_min_error_statement = panic;
SET log_statement = 'none';
SET log_min_duration_statement = -1;
\set verifier `cat`
SELECT format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS', 'django')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'django')\gexec
-- Every run sets the attributes (the role owns the app's database and nothing more) and the
-- password, so a role changed by hand is put back and a rotated password takes effect.
ALTER ROLE "django" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'verifier';
\unset verifier
SELECT format('CREATE DATABASE %I OWNER %I', 'django', 'django')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'django')\gexec
ALTER DATABASE "django" OWNER TO "django";
