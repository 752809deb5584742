#!/usr/bin/env bash
# managed by djscale, do not edit
# `sudo djscale-restore [latest|KEY]` on the database host (README, Operations; the app's
# traffic stopped first: `python3 -m components.restore --stack <stack>` does both):
#   1. the backup (the newest of this database by default) downloaded, and
#      checked (`pg_restore --list`);
#   2. restored in one transaction into a NEW database, owned by the app's role, while the
#      database in service is untouched (a failure here leaves it as it was);
#   3. the database in service closed to new connections, its sessions ended, and in one
#      transaction renamed to djscale_pre_restore_<UTC time> while the restored one takes
#      its name. A half-restored database is never in service; the one it replaced is kept
#      (no connections allowed) until you drop it.
# `sudo djscale-restore --list`: the backups in the bucket, newest first, and the databases
# earlier restores kept.
set -euo pipefail
bucket=shop-backups
prefix=backups/
endpoint=https://s3.example.net
region=eu-west-1
db_name=django
db_user=django
port=5432
s3_tool=/usr/local/lib/djscale/djscale-s3
credentials=/etc/djscale/backup/s3-credentials.json
passphrase_file=/etc/djscale/backup/passphrase
work=/var/lib/djscale/backups/work
lock=/run/djscale-backup.lock
restoring=djscale_restoring
style=()

s3() {
    python3 "$s3_tool" --endpoint "$endpoint" --region "$region" --bucket "$bucket" \
        "${style[@]}" --credentials "$credentials" "$@"
}
# psql as postgres over the local socket; the names are psql variables, quoted by psql
pg() {
    runuser -u postgres -- psql -X -q -At -v ON_ERROR_STOP=1 --port="$port" \
        -v live="$db_name" -v restoring="$restoring" -v owner="$db_user" "$@"
}
# This database's backups, newest first: KEY<TAB>SIZE<TAB>LAST-MODIFIED
backups() {
    local listing key size modified rest
    listing=$(s3 list "$prefix$db_name-")
    while IFS=$'\t' read -r key size modified; do
        rest=${key#"$prefix$db_name-"}
        if [[ $rest =~ ^[0-9]{8}T[0-9]{6}Z\.dump(\.gpg)?$ ]]; then
            printf '%s\t%s\t%s\n' "$key" "$size" "$modified"
        fi
    done <<<"$listing" | sort -r
}

cd /
choice=${1:-latest}
case $choice in
    --list)
        echo "== backups of $db_name in s3://$bucket/$prefix (newest first)"
        backups
        echo "== databases earlier restores replaced (drop with: sudo -u postgres dropdb NAME)"
        pg -d postgres <<<"SELECT datname FROM pg_database WHERE datname LIKE 'djscale\_pre\_restore\_%' ORDER BY 1;"
        exit 0
        ;;
    -*)
        echo "usage: djscale-restore [latest|KEY|--list]" >&2
        exit 2
        ;;
esac

exec 9>"$lock"
if ! flock -w 600 9; then
    echo "djscale: a backup or another restore holds $lock; try again when it is done" >&2
    exit 1
fi
umask 077
install -d -m 0700 "$work"
if [ "$choice" = latest ]; then
    key=$(backups | head -n 1 | cut -f 1)
    if [ -z "$key" ]; then
        echo "djscale: no backup of $db_name in s3://$bucket/$prefix" >&2
        exit 1
    fi
else
    key=$choice
fi
case $key in
    *.dump | *.dump.gpg) ;;
    *)
        echo "djscale: $key is not a djscale backup (.dump or .dump.gpg)" >&2
        exit 1
        ;;
esac
download=$work/restore.${key##*.}
archive=$work/restore.dump
trap 'rm -rf -- "$work/restore.dump" "$work/restore.gpg" "$work/gnupg"' EXIT
echo "djscale: downloading s3://$bucket/$key"
if ! s3 get "$key" "$download"; then
    echo "djscale: the download failed (djscale-s3's reason is above); nothing was changed" >&2
    exit 1
fi
if [ "$download" != "$archive" ]; then
    if [ ! -r "$passphrase_file" ]; then
        echo "djscale: $key is encrypted and this host has no passphrase (backups.encrypt and the backupEncryptionPassphrase secret)" >&2
        exit 1
    fi
    rm -rf -- "$work/gnupg"
    install -d -m 0700 "$work/gnupg"
    if ! GNUPGHOME=$work/gnupg gpg --batch --quiet --yes --pinentry-mode loopback \
            --passphrase-file "$passphrase_file" --output "$archive" --decrypt "$download"; then
        echo "djscale: decrypting $key failed (wrong passphrase, or a damaged file); nothing was changed" >&2
        exit 1
    fi
fi
# pg_restore (as postgres) reads the archive on stdin: the work directory is root's alone.
if ! runuser -u postgres -- pg_restore --list < "$archive" >/dev/null; then
    echo "djscale: $key is not a pg_dump archive; nothing was changed" >&2
    exit 1
fi

# 2. Into a new database. One left by an interrupted restore was never in service.
echo "djscale: restoring into the new database $restoring"
pg -d postgres <<'SQL'
DROP DATABASE IF EXISTS :"restoring";
CREATE DATABASE :"restoring" OWNER :"owner";
SQL
if ! runuser -u postgres -- pg_restore --port="$port" --dbname="$restoring" \
        --single-transaction --exit-on-error --no-owner --role="$db_user" < "$archive"; then
    pg -d postgres <<<'DROP DATABASE IF EXISTS :"restoring";' || true
    echo "djscale: pg_restore failed (its output is above); the database in service is unchanged" >&2
    exit 1
fi
pg -d "$restoring" <<<'ANALYZE;'

# 3. The swap: no new sessions, the open ones ended, both renames in one transaction.
kept=djscale_pre_restore_$(date -u +%Y%m%dT%H%M%SZ)
pg -d postgres <<<'ALTER DATABASE :"live" WITH ALLOW_CONNECTIONS false;'
swapped=no
for attempt in $(seq 1 30); do
    pg -d postgres >/dev/null <<<"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = :'live' AND pid <> pg_backend_pid();"
    if pg -d postgres -v kept="$kept" 2>/dev/null <<'SQL'
BEGIN;
ALTER DATABASE :"live" RENAME TO :"kept";
ALTER DATABASE :"restoring" RENAME TO :"live";
COMMIT;
SQL
    then
        swapped=yes
        break
    fi
    echo "djscale: sessions still open on $db_name (attempt $attempt of 30), retrying" >&2
    sleep 1
done
if [ "$swapped" != yes ]; then
    pg -d postgres <<<'ALTER DATABASE :"live" WITH ALLOW_CONNECTIONS true;'
    echo "djscale: $db_name kept sessions open; the database in service is unchanged (the restored copy is $restoring)" >&2
    exit 1
fi
echo "djscale: restored $key into $db_name; the database it replaced is kept as $kept (no connections; drop it with: sudo -u postgres dropdb $kept)"
