#!/usr/bin/env bash
# managed by djscale, do not edit
# Install djscale's settings drop-in and pg_hba.conf from their staged copies into the
# cluster "main", check them with the server's own parsers (`postgres -C` loads every
# setting as a start would, before they take effect; pg_hba_file_rules reads pg_hba.conf
# from disk, before a reload can take it), and put the old files back if the server
# rejects them. Then restart when the running server's listen_addresses, port or
# max_connections differ from the drop-in's (they change only on restart; comparing with the
# running server also finishes a run that stopped half-way), else reload when a file changed.
set -euo pipefail

version=''
staged_conf=/etc/djscale/postgres/djscale.conf
staged_hba=/etc/djscale/postgres/pg_hba.conf
listen_addresses=10.0.0.10
wanted_port=5432
max_connections=100

if [ -z "$version" ]; then
    version=$(pg_lsclusters --no-header | awk '$2 == "main" { print $1 }' | sort -V | tail -n 1)
fi
conf_dir=/etc/postgresql/$version/main
if [ -z "$version" ] || [ ! -d "$conf_dir" ]; then
    echo "djscale: no PostgreSQL cluster '${version:-?}/main' (see pg_lsclusters)" >&2
    exit 1
fi
unit=postgresql@$version-main
systemctl start "$unit"
# The port the running server listens on now: line 4 of postmaster.pid (a changed port
# takes effect on restart, so the config files may already say otherwise).
data_dir=$(pg_lsclusters --no-header | awk -v v="$version" '$1 == v && $2 == "main" { print $6 }')
port=$(sed -n 4p "$data_dir/postmaster.pid")

psql_admin() {
    (cd / && runuser -u postgres -- psql -X -q -At -v ON_ERROR_STOP=1 -p "$port" "$@")
}

reload_now() {  # reload, and wait until new sessions run with the files just read
    local before
    before=$(psql_admin -c "SELECT pg_conf_load_time()")
    psql_admin -c "SELECT pg_reload_conf()" >/dev/null
    for _ in $(seq 100); do
        [ "$(psql_admin -c "SELECT pg_conf_load_time()")" != "$before" ] && return 0
        sleep 0.1
    done
    echo "djscale: PostgreSQL did not reload its configuration within 10 s" >&2
    return 1
}

backup=$(mktemp -d)
trap 'rm -rf -- "$backup"' EXIT
install -d -o postgres -g postgres -m 0755 "$conf_dir/conf.d"

changed_conf=no
changed_hba=no
cp -p "$conf_dir/pg_hba.conf" "$backup/pg_hba.conf"
if [ -e "$conf_dir/conf.d/djscale.conf" ]; then
    cp -p "$conf_dir/conf.d/djscale.conf" "$backup/djscale.conf"
fi
if ! cmp -s "$staged_conf" "$conf_dir/conf.d/djscale.conf"; then
    install -o postgres -g postgres -m 0644 "$staged_conf" "$conf_dir/conf.d/djscale.conf"
    changed_conf=yes
fi
if ! cmp -s "$staged_hba" "$conf_dir/pg_hba.conf"; then
    install -o postgres -g postgres -m 0640 "$staged_hba" "$conf_dir/pg_hba.conf"
    changed_hba=yes
fi
if [ "$changed_conf" = yes ] || [ "$changed_hba" = yes ]; then
    # The settings as the server would load them at start (all files, all values checked),
    # then pg_hba.conf's rules as a reload would read them. The server judges the rules with
    # its running settings (a `hostssl` line is an error while `ssl` is off), so valid new
    # settings are loaded first; a reload never takes a pg_hba.conf that has errors.
    errors=''
    reloaded=no
    if ! settings=$(cd / && runuser -u postgres -- "/usr/lib/postgresql/$version/bin/postgres" \
            -D "$data_dir" -c config_file="$conf_dir/postgresql.conf" -C listen_addresses 2>&1); then
        errors="settings: $settings"
    elif [ "$changed_conf" = yes ]; then
        reloaded=yes
        reload_now
    fi
    if [ -z "$errors" ]; then
        errors=$(psql_admin -c "SELECT 'pg_hba.conf:' || line_number || ': ' || error FROM pg_hba_file_rules WHERE error IS NOT NULL")
    fi
    if [ -n "$errors" ]; then
        echo "djscale: PostgreSQL rejects the new configuration; the previous files are restored:" >&2
        echo "$errors" >&2
        install -o postgres -g postgres -m 0640 "$backup/pg_hba.conf" "$conf_dir/pg_hba.conf"
        if [ -e "$backup/djscale.conf" ]; then
            install -o postgres -g postgres -m 0644 "$backup/djscale.conf" "$conf_dir/conf.d/djscale.conf"
        else
            rm -f "$conf_dir/conf.d/djscale.conf"
        fi
        if [ "$reloaded" = yes ]; then  # the previous settings again
            reload_now
        fi
        exit 1
    fi
fi

running_listen=$(psql_admin -c "SHOW listen_addresses")
running_max=$(psql_admin -c "SHOW max_connections")
if [ "$running_listen" != "$listen_addresses" ] || [ "$port" != "$wanted_port" ]; then
    echo "djscale: listening on '$running_listen' port $port, restarting $unit for '$listen_addresses' port $wanted_port"
    systemctl restart "$unit"
elif [ "$running_max" != "$max_connections" ]; then
    echo "djscale: max_connections is $running_max, restarting $unit for $max_connections"
    systemctl restart "$unit"
elif [ "$changed_conf" = yes ] || [ "$changed_hba" = yes ]; then
    echo "djscale: configuration changed, reloading $unit"
    psql_admin -c "SELECT pg_reload_conf()" >/dev/null
else
    echo "djscale: PostgreSQL configuration unchanged"
fi
