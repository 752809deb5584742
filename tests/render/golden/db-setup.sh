#!/usr/bin/env bash
# managed by djscale, do not edit
# Create the app's role and database if missing and set the role's password on every run
# (rotation). The password is this script's stdin; it goes to psql through a pipe from the
# shell's builtin printf, never onto a command line, and is never echoed (no `set -x`).
set -euo pipefail
port=5432
# shellcheck disable=SC2016  # the SQL is literal text: psql, not bash, reads it
sql='-- managed by djscale, do not edit
-- Run by psql as postgres. The role'"'"'s password is psql'"'"'s stdin, read by `cat` into :pw and
-- interpolated as a quoted literal (:'"'"'pw'"'"'); it never appears on a command line.
\set ON_ERROR_STOP on
-- A failure must not show the password: psql prints no statement text or context, and this
-- session keeps statements out of the server log (by default an error logs its statement).
\set VERBOSITY terse
\set SHOW_CONTEXT never
SET log_min_error_statement = panic;
SET log_statement = '"'"'none'"'"';
SET log_min_duration_statement = -1;
\set pw `cat`
SELECT format('"'"'CREATE ROLE %I LOGIN'"'"', '"'"'django'"'"')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '"'"'django'"'"')\gexec
-- Every run sets the password, so a rotated password takes effect.
ALTER ROLE "django" WITH LOGIN PASSWORD :'"'"'pw'"'"';
\unset pw
SELECT format('"'"'CREATE DATABASE %I OWNER %I'"'"', '"'"'django'"'"', '"'"'django'"'"')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '"'"'django'"'"')\gexec
ALTER DATABASE "django" OWNER TO "django";
'

password=''
IFS= read -r -d '' password || true
password=${password%$'\n'}
if [ -z "$password" ]; then
    echo "djscale: expected the database password on stdin" >&2
    exit 1
fi
case "$password" in
    *$'\n'*) echo "djscale: the database password must be a single line" >&2; exit 1 ;;
esac

workdir=$(mktemp -d)
trap 'rm -rf -- "$workdir"' EXIT
printf '%s' "$sql" > "$workdir/setup.sql"
chown -R postgres: "$workdir"
cd /
printf '%s' "$password" | runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$port" -f "$workdir/setup.sql"
