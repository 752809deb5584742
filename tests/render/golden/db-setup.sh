#!/usr/bin/env bash
# managed by djscale, do not edit
# Create the app's role and database if missing, and set the role's attributes and password
# on every run (rotation). This script's stdin is the password's SCRAM-SHA-256 verifier, as
# PostgreSQL stores it (computed by djscale): the password itself never reaches this host.
# The verifier goes to psql through a pipe from the shell's builtin printf, never onto a
# command line, and is never echoed (no `set -x`).
set -euo pipefail
port=5432
# shellcheck disable=SC2016  # the SQL is literal text: psql, not bash, reads it
sql='-- managed by djscale, do not edit
-- Run by psql as postgres. The role'"'"'s password verifier (SCRAM-SHA-256, computed by djscale)
-- is psql'"'"'s stdin, read by `cat` into :verifier and interpolated as a quoted literal
-- (:'"'"'verifier'"'"'); it never appears on a command line. PostgreSQL stores a verifier as it is:
-- the password itself is never sent.
\set ON_ERROR_STOP on
-- A failure must not show the verifier: psql prints no statement text or context, and this
-- session keeps statements out of the server log (by default an error logs its statement).
\set VERBOSITY terse
\set SHOW_CONTEXT never
SET log_min_error_statement = panic;
SET log_statement = '"'"'none'"'"';
SET log_min_duration_statement = -1;
\set verifier `cat`
SELECT format('"'"'CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS'"'"', '"'"'django'"'"')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '"'"'django'"'"')\gexec
-- Every run sets the attributes (the role owns the app'"'"'s database and nothing more) and the
-- password, so a role changed by hand is put back and a rotated password takes effect.
ALTER ROLE "django" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'"'"'verifier'"'"';
\unset verifier
SELECT format('"'"'CREATE DATABASE %I OWNER %I'"'"', '"'"'django'"'"', '"'"'django'"'"')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '"'"'django'"'"')\gexec
ALTER DATABASE "django" OWNER TO "django";
'

verifier=''
IFS= read -r -d '' verifier || true
verifier=${verifier%$'\n'}
# Anything else (a plaintext password sent by mistake) is refused before psql sees it.
verifier_format='^SCRAM-SHA-256\$[0-9]+:[A-Za-z0-9+/]+=*\$[A-Za-z0-9+/]+=*:[A-Za-z0-9+/]+=*$'
if [[ ! "$verifier" =~ $verifier_format ]]; then
    echo "djscale: expected the role's SCRAM-SHA-256 verifier on stdin" >&2
    exit 1
fi

workdir=$(mktemp -d)
trap 'rm -rf -- "$workdir"' EXIT
printf '%s' "$sql" > "$workdir/setup.sql"
chown -R postgres: "$workdir"
cd /
printf '%s' "$verifier" | runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$port" -f "$workdir/setup.sql"
