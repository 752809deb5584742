-- managed by djscale, do not edit
-- Run by psql as postgres. The role's password is psql's stdin, read by `cat` into :pw and
-- interpolated as a quoted literal (:'pw'); it never appears on a command line.
\set ON_ERROR_STOP on
-- A failure must not show the password: psql prints no statement text or context, and this
-- session keeps statements out of the server log (by default an error logs its statement).
\set VERBOSITY terse
\set SHOW_CONTEXT never
SET log_min_error_statement = panic;
SET log_statement = 'none';
SET log_min_duration_statement = -1;
\set pw `cat`
SELECT format('CREATE ROLE %I LOGIN', 'django')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'django')\gexec
-- Every run sets the password, so a rotated password takes effect.
ALTER ROLE "django" WITH LOGIN PASSWORD :'pw';
\unset pw
SELECT format('CREATE DATABASE %I OWNER %I', 'django', 'django')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'django')\gexec
ALTER DATABASE "django" OWNER TO "django";
