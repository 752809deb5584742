#!/usr/bin/env bash
# managed by djscale, do not edit
# Run by djscale-backup.service (its timer, or `sudo djscale-backup-now`; README,
# Operations): the database dumped in PostgreSQL's custom format (`pg_dump -Fc`, as the
# postgres user over the local socket), encrypted with gpg (AES-256, the passphrase from a
# root-only file) when backups.encrypt says so, uploaded to
# s3://<bucket>/<prefix><database>-<UTC time>.dump[.gpg], recorded in state_file, then
# retention applied: a backup of this database is deleted only when no rule keeps it (the
# newest keep_count; those younger than keep_days days; 0 turns a rule off), and never the
# one just made. Any failure fails the unit, whose OnFailure= raises djscale's alert. The
# dump waits in a root-only directory and is deleted when the script ends.
set -euo pipefail
bucket=shop-backups
prefix=backups/
endpoint=https://s3.example.net
region=eu-west-1
db_name=django
port=5432
s3_tool=/usr/local/lib/djscale/djscale-s3
credentials=/etc/djscale/backup/s3-credentials.json
work=/var/lib/djscale/backups/work
lock=/run/djscale-backup.lock
state_file=/var/lib/djscale/backups/last-backup
keep_count=14
keep_days=0
style=()

s3() {
    python3 "$s3_tool" --endpoint "$endpoint" --region "$region" --bucket "$bucket" \
        "${style[@]}" --credentials "$credentials" "$@"
}

# One backup or restore at a time.
exec 9>"$lock"
if ! flock -w 3600 9; then
    echo "djscale: a backup or a restore has held $lock for an hour" >&2
    exit 1
fi
umask 077
install -d -m 0700 "$work"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
dump=$work/$db_name-$stamp.dump
trap 'rm -rf -- "$dump" "$dump.gpg" "$work/gnupg"' EXIT
cd /
if ! runuser -u postgres -- pg_dump --format=custom --port="$port" --dbname="$db_name" \
        > "$dump"; then
    echo "djscale: pg_dump of $db_name failed (its output is above)" >&2
    exit 1
fi
upload=$dump
name=${upload##*/}
key=$prefix$name
size=$(stat -c %s "$upload")
if ! s3 put "$key" "$upload"; then
    echo "djscale: the upload to s3://$bucket/$key failed (djscale-s3's reason is above)" >&2
    exit 1
fi
install -d -m 0755 "$(dirname "$state_file")"
state=$(mktemp "$state_file.XXXXXX")
cat > "$state" <<STATE
time: $(date -u +%Y-%m-%dT%H:%M:%SZ)
database: $db_name
object: s3://$bucket/$key
size: $size bytes
STATE
chmod 0644 "$state"
mv -f "$state" "$state_file"
echo "djscale: backed up $db_name to s3://$bucket/$key ($size bytes)"

# Retention: this database's backups, newest first (the keys sort by their time).
listing=$(s3 list "$prefix$db_name-")
now=$(date -u +%s)
position=0
while IFS=$'\t' read -r candidate _; do
    rest=${candidate#"$prefix$db_name-"}
    if [[ ! $rest =~ ^([0-9]{8})T([0-9]{2})([0-9]{2})([0-9]{2})Z\.dump(\.gpg)?$ ]]; then
        continue  # not a backup djscale made of this database: never touched
    fi
    position=$((position + 1))
    taken=$(date -u -d "${BASH_REMATCH[1]} ${BASH_REMATCH[2]}:${BASH_REMATCH[3]}:${BASH_REMATCH[4]}" +%s)
    if [ "$candidate" = "$key" ] || { [ "$keep_count" -eq 0 ] && [ "$keep_days" -eq 0 ]; } ||
        { [ "$keep_count" -gt 0 ] && [ "$position" -le "$keep_count" ]; } ||
        { [ "$keep_days" -gt 0 ] && [ $((now - taken)) -lt $((keep_days * 86400)) ]; }; then
        continue
    fi
    s3 delete "$candidate"
    echo "djscale: retention: deleted s3://$bucket/$candidate"
done < <(printf '%s\n' "$listing" | sort -r)
