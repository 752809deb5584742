#!/usr/bin/env bash
# managed by djscale, do not edit
# The host firewall: ufw with default deny incoming (IPv4 and IPv6), allow outgoing, and
# exactly the rules below; any other ufw rule is deleted. ufw's own commands keep its rule
# files and the running tables in step, and `ufw show added` prints rules in the same
# canonical form as the list below, so the script compares and changes only the difference
# (a re-run changes nothing). Missing rules are added before anything is deleted and before
# ufw is enabled, so SSH from the admin networks stays allowed at every moment.
#
# Nothing is changed unless the checks pass first: sshd listens on the SSH port, the address
# this deploy connects from is inside the SSH rules below (or the next SSH session, the next
# step, would be shut out), and a changed after.rules loads.
# $1: the SSH session's $SSH_CLIENT ("address port port"), handed over by the command line
# (sudo resets the environment). By hand, from an SSH session: sudo bash THIS "$SSH_CLIENT"
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
    'allow from 198.51.100.0/24 to any port 22 proto tcp'
    'allow from 192.0.2.7 to any port 22 proto tcp'
    'allow from 10.0.0.30 to any port 8000 proto tcp'
    'allow from 10.0.0.30 to any port 8001 proto tcp'
)
after_rules=/etc/ufw/after.rules
docker_user_block='# BEGIN djscale
# managed by djscale, do not edit: this block, between the markers, is replaced on every deploy.
# Docker-published ports are DNATed and reach containers through FORWARD, never INPUT, so
# ufw'"'"'s own rules do not see them. Docker jumps from FORWARD to DOCKER-USER first: here NEW
# connections from anywhere but a Docker bridge are dropped, except the allowed sources to
# the allowed published ports (matched on the port before DNAT, --ctorigdstport).
# Containers do not reach link-local addresses (169.254.0.0/16: the cloud metadata service,
# which hands out credentials), DNS and NTP excepted. That jump comes first: it matches only
# what containers send to those addresses (replies to a container are addressed to the
# container), and it also cuts a connection opened before this block was loaded.
*filter
:DOCKER-USER - [0:0]
:DJSCALE-LINK-LOCAL - [0:0]
-A DJSCALE-LINK-LOCAL -p udp -m multiport --dports 53,123 -j RETURN
-A DJSCALE-LINK-LOCAL -p tcp -m multiport --dports 53 -j RETURN
-A DJSCALE-LINK-LOCAL -j DROP
-A DOCKER-USER -d 169.254.0.0/16 -i docker0 -j DJSCALE-LINK-LOCAL
-A DOCKER-USER -d 169.254.0.0/16 -i br-+ -j DJSCALE-LINK-LOCAL
-A DOCKER-USER -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN
-A DOCKER-USER -i docker0 -j RETURN
-A DOCKER-USER -i br-+ -j RETURN
-A DOCKER-USER -s 10.0.0.30/32 -p tcp -m conntrack --ctstate NEW --ctorigdstport 8000 --ctdir ORIGINAL -j RETURN
-A DOCKER-USER -s 10.0.0.30/32 -p tcp -m conntrack --ctstate NEW --ctorigdstport 8001 --ctdir ORIGINAL -j RETURN
-A DOCKER-USER -m conntrack --ctstate NEW -j DROP
-A DOCKER-USER -j RETURN
COMMIT
# END djscale
'

# SSH is allowed on this port only: if sshd listens elsewhere (a port forward, a typo in the
# stack), the firewall would shut the next SSH session out. Refuse instead.
ssh_port=22
if command -v ss >/dev/null && [ -z "$(ss -Htln "sport = :$ssh_port")" ]; then
    echo "djscale: nothing listens on SSH port $ssh_port here; refusing to enable a firewall that would lock SSH out" >&2
    exit 1
fi

if ! command -v ufw >/dev/null; then
    apt_update
    apt_get install -y --no-install-recommends ufw
fi

# The networks the rules above let reach SSH (firewall.adminCidrs), and the address this
# deploy connects from as this host sees it: the machine running it, or the bastion, or
# the NAT in between. python3 is there wherever ufw is (ufw is a python3 program).
ssh_sources=(
    198.51.100.0/24
    192.0.2.7/32
)
deployer=${1:-}
deployer=${deployer%% *}
if [ -z "$deployer" ]; then
    echo "djscale: refusing to change the firewall: it cannot tell where this deploy connects from (\$SSH_CLIENT was not passed as the first argument)" >&2
    exit 1
fi
inside=0
python3 - "$deployer" "${ssh_sources[@]}" <<'PY' || inside=$?
import ipaddress
import sys

try:
    address = ipaddress.ip_address(sys.argv[1].split("%")[0])
except ValueError:
    sys.exit(2)
if address.version == 6 and address.ipv4_mapped:
    address = address.ipv4_mapped
sys.exit(0 if any(address in ipaddress.ip_network(n) for n in sys.argv[2:]) else 1)
PY
admin_cidrs=$(printf '%s, ' "${ssh_sources[@]}")
case "$inside" in
    0) ;;
    1) echo "djscale: refusing to change the firewall: this deploy connects from $deployer, which firewall.adminCidrs (${admin_cidrs%, }) does not include, so SSH from it would be closed. Add $deployer (or its network; with ssh.bastion, the bastion's address as this host sees it) to firewall.adminCidrs. Nothing was changed." >&2
       exit 1 ;;
    2) echo "djscale: refusing to change the firewall: '$deployer' (from \$SSH_CLIENT) is not an IP address" >&2
       exit 1 ;;
    *) echo "djscale: refusing to change the firewall: could not check $deployer against firewall.adminCidrs (python3 exited $inside)" >&2
       exit 1 ;;
esac

# The DOCKER-USER block lives in after.rules between its markers: replace it in place (or
# append it) and keep the rest of the file. A changed file is checked as ufw will load it at
# the next reload and at every boot: ufw's own init loads this host's rule files, the new
# after.rules among them, in a throwaway network namespace (`iptables-restore --test` misses
# jumps to chains that do not exist). One that does not load changes nothing.
new_after_rules=$(mktemp)
scratch=$(mktemp -d)
trap 'rm -rf "$new_after_rules" "$scratch"' EXIT
awk '$0 == "# BEGIN djscale" { skip = 1; next } $0 == "# END djscale" { skip = 0; next } !skip' \
    "$after_rules" > "$new_after_rules"
printf '%s' "$docker_user_block" >> "$new_after_rules"
after_rules_changed=no
if ! cmp -s "$new_after_rules" "$after_rules"; then
    after_rules_changed=yes
    mkdir -p "$scratch/etc/default"
    cp -a /etc/ufw "$scratch/etc/ufw"
    rm -f "$scratch/etc/ufw/before.init" "$scratch/etc/ufw/after.init"  # hooks: not ours to run
    cp "$new_after_rules" "$scratch/etc/ufw/after.rules"
    # later assignments win: IPv6 as set below; no sysctls or modules (they are not per-namespace)
    { cat /etc/default/ufw; printf 'IPV6=yes\nIPT_SYSCTL=\nIPT_MODULES=\n'; } \
        > "$scratch/etc/default/ufw"
    { cat /etc/ufw/ufw.conf; printf 'ENABLED=yes\n'; } > "$scratch/etc/ufw/ufw.conf"
    if ! loaded=$(unshare --net /lib/ufw/ufw-init --datadir "$scratch" start 2>&1); then
        echo "djscale: refusing to change the firewall: the new $after_rules does not load (ufw-init in a scratch network namespace): $loaded" >&2
        exit 1
    fi
fi

# IPv6 on, so the default deny and the rules apply to it too. (With IPV6=no, ufw drops all
# IPv6 but loopback: the proxy's IPv6 clients, outgoing IPv6 and any IPv6 admin network.)
ufw_defaults=/etc/default/ufw
if [ "$(sed -n 's/^IPV6=//p' "$ufw_defaults" | tail -n 1)" != yes ]; then
    status=$(ufw status)  # before the change: until the reload, `ufw status` fails
    if grep -q '^IPV6=' "$ufw_defaults"; then
        sed -i 's/^IPV6=.*/IPV6=yes/' "$ufw_defaults"
    else
        echo 'IPV6=yes' >> "$ufw_defaults"
    fi
    echo "djscale: IPV6=yes in $ufw_defaults"
    # A running ufw has no IPv6 chains yet: reload before a rule is added (each is then
    # added again: ufw adds the IPv6 half of a rule it had for IPv4 only).
    if [[ $status == "Status: active"* ]]; then
        ufw reload
    fi
    ipv6_turned_on=yes
else
    ipv6_turned_on=no
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
    if [ "$ipv6_turned_on" = yes ] || ! contains "$rule" "${current[@]}"; then
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
if [ "$after_rules_changed" = yes ]; then
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
