#!/usr/bin/env bash
# managed by djscale, do not edit
# The host firewall: ufw with default deny incoming, allow outgoing, and exactly the rules
# below; any other ufw rule is deleted. ufw's own commands keep its rule files and the
# running tables in step, and `ufw show added` prints rules in the same canonical form as
# the list below, so the script compares and changes only the difference (a re-run changes
# nothing). Missing rules are added before anything is deleted and before ufw is enabled, so
# SSH from the admin networks stays allowed at every moment.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
# apt waits for other package managers (unattended-upgrades, cloud-init) instead of failing:
# the dpkg lock through DPkg::Lock::Timeout, the lists lock of `update` through retries.
apt_get() {
    apt-get -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3 "$@"
}
apt_update() {
    local attempt
    for attempt in 1 2 3 4 5 6 7 8 9 10; do
        if apt_get update; then
            return 0
        fi
        echo "djscale: apt-get update failed (attempt $attempt of 10), retrying in 15s" >&2
        sleep 15
    done
    return 1
}
is_installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}

desired=(
    'allow from 198.51.100.0/24 to any port 2222 proto tcp'
    'allow from 192.0.2.7 to any port 2222 proto tcp'
    'allow 80/tcp'
    'allow 443/tcp'
)
after_rules=/etc/ufw/after.rules
docker_user_block='# BEGIN djscale
# managed by djscale, do not edit: this block, between the markers, is replaced on every deploy.
# Docker-published ports are DNATed and reach containers through FORWARD, never INPUT, so
# ufw'"'"'s own rules do not see them. Docker jumps from FORWARD to DOCKER-USER first: here NEW
# connections from anywhere but a Docker bridge are dropped, except the allowed sources to
# the allowed published ports (matched on the port before DNAT, --ctorigdstport).
*filter
:DOCKER-USER - [0:0]
-A DOCKER-USER -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN
-A DOCKER-USER -i docker0 -j RETURN
-A DOCKER-USER -i br-+ -j RETURN
-A DOCKER-USER -m conntrack --ctstate NEW -j DROP
-A DOCKER-USER -j RETURN
COMMIT
# END djscale
'

# SSH is allowed on this port only: if sshd listens elsewhere (a port forward, a typo in the
# stack), the firewall would shut the next SSH session out. Refuse instead.
ssh_port=2222
if command -v ss >/dev/null && [ -z "$(ss -Htln "sport = :$ssh_port")" ]; then
    echo "djscale: nothing listens on SSH port $ssh_port here; refusing to enable a firewall that would lock SSH out" >&2
    exit 1
fi

if ! command -v ufw >/dev/null; then
    apt_update
    apt_get install -y --no-install-recommends ufw
fi

ufw_add() {  # the rule's words are addresses, ports and keywords: plain word splitting
    local words
    read -r -a words <<< "$1"
    ufw "${words[@]}"
}
ufw_delete() {
    local words
    read -r -a words <<< "$1"
    if [ "${words[0]}" = route ]; then
        ufw --force route delete "${words[@]:1}"
    else
        ufw --force delete "${words[@]}"
    fi
}

added=$(ufw show added)
current=()
while IFS= read -r line; do
    case "$line" in
        "ufw "*) rule=${line#ufw }; current+=("${rule% comment \'*\'}") ;;
    esac
done <<< "$added"

contains() {  # contains WORD LIST...
    local needle=$1 item
    shift
    for item in "$@"; do
        [ "$item" = "$needle" ] && return 0
    done
    return 1
}

for rule in "${desired[@]}"; do
    if ! contains "$rule" "${current[@]}"; then
        echo "djscale: ufw add: $rule"
        ufw_add "$rule"
    fi
done
ufw default deny incoming
ufw default allow outgoing
for rule in "${current[@]}"; do
    if ! contains "$rule" "${desired[@]}"; then
        echo "djscale: ufw delete: $rule"
        ufw_delete "$rule"
    fi
done

reload=no
# The DOCKER-USER block lives in after.rules between its markers: replace it in place (or
# append it), keep the rest of the file, and check the block with iptables before using it.
new_after_rules=$(mktemp)
trap 'rm -f "$new_after_rules"' EXIT
awk '$0 == "# BEGIN djscale" { skip = 1; next } $0 == "# END djscale" { skip = 0; next } !skip' \
    "$after_rules" > "$new_after_rules"
printf '%s' "$docker_user_block" >> "$new_after_rules"
if ! cmp -s "$new_after_rules" "$after_rules"; then
    printf '%s' "$docker_user_block" | iptables-restore --test
    install -m 0640 "$new_after_rules" "$after_rules"
    echo "djscale: updated the DOCKER-USER block in $after_rules"
    reload=yes
fi

status=$(ufw status)
if [[ $status != "Status: active"* ]]; then
    ufw --force enable
elif [ "$reload" = yes ]; then
    ufw reload
fi
status=$(ufw status)
if [[ $status != "Status: active"* ]]; then
    echo "djscale: ufw is not active after applying the rules" >&2
    exit 1
fi
