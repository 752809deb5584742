"""Value rules: pure functions that say why one config value is unusable, or return None.

Each rule is written once and used by the config parser (through the key declarations in
components/config/schema.py) and, where a renderer checks its input again, by that renderer.
A problem text never contains the key path: the reader adds it.
"""
from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import os
import re
from typing import Any, Optional
from urllib.parse import urlsplit

_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", re.IGNORECASE)
_DOTTED_NUMBERS = re.compile(r"^[0-9.]+$")
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@([^@\s]+)$")
_SQL_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_HOST_KEY = re.compile(
    r"^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)"
    r"|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com) (?P<blob>[A-Za-z0-9+/]+={0,2})$"
)
_STACK_NAME = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_HOST_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_UNIX_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_DJANGO_USERNAME = re.compile(r"^[\w.@+-]{1,150}$")
_POSTGRES_VERSION = re.compile(r"^\d+(\.\d+)?$")
_REGION = re.compile(r"[A-Za-z0-9-]+")
# nginx's own syntax for times and sizes (ngx_parse_time / ngx_parse_size); a bare number
# means seconds / bytes. The one definition: the nginx renderer checks against these too.
NGINX_TIME = re.compile(r"^\d+(ms|s|m)?$")
NGINX_SIZE = re.compile(r"^\d+[kKmMgG]?$")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

# PostgreSQL's reserved key words: as a role or database name they would need quoting.
POSTGRES_RESERVED = frozenset("""
    all analyse analyze and any array as asc asymmetric both case cast check collate column
    constraint create current_catalog current_date current_role current_time current_timestamp
    current_user default deferrable desc distinct do else end except false fetch for foreign
    from grant group having in initially intersect into lateral leading limit localtime
    localtimestamp not null offset on only or order placing primary references returning
    select session_user some symmetric system_user table then to trailing true union unique
    user using variadic when where window with
""".split())


def show(value: Any) -> str:
    """A value as the problem text quotes it: 'text' for strings, JSON for the rest."""
    if isinstance(value, str):
        return repr(value)
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


# --------------------------------------------------------------------------- names

def is_hostname(value: str, min_labels: int = 1) -> bool:
    """A DNS host name: dot-separated labels of letters, digits and inner hyphens."""
    if not value or len(value) > 253 or value.endswith("."):
        return False
    labels = value.split(".")
    if len(labels) < min_labels or not all(_LABEL.match(label) for label in labels):
        return False
    return not labels[-1].isdigit()  # an all-numeric last label is a mistyped IPv4 address


def is_ipv4(value: str) -> bool:
    try:
        ipaddress.IPv4Address(value)
        return True
    except ValueError:
        return False


def domain_problem(value: str) -> Optional[str]:
    if "://" in value:
        return f"{show(value)} must be a bare domain name, without a scheme"
    if "/" in value:
        return f"{show(value)} must be a bare domain name, without a path"
    if not is_hostname(value, min_labels=2):
        return f"{show(value)} is not a fully qualified domain name"
    return None


def email_problem(value: str) -> Optional[str]:
    match = _EMAIL.match(value)
    if not match or not is_hostname(match.group(1), min_labels=2):
        return f"{show(value)} is not an email address"
    return None


def url_problem(value: str, schemes: tuple[str, ...]) -> Optional[str]:
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.netloc or parts.netloc.startswith(":"):
        wanted = " or ".join(f"{scheme}://" for scheme in schemes)
        return f"{show(value)} must be an {wanted} URL"
    return None


def https_url_problem(value: str) -> Optional[str]:
    return url_problem(value, ("https",))


def http_url_problem(value: str) -> Optional[str]:
    return url_problem(value, ("http", "https"))


def host_name_problem(value: str) -> Optional[str]:
    """A name of ours used in resource names (`app1`, `canary`)."""
    if not _HOST_NAME.match(value):
        return f"{show(value)} must be lowercase letters, digits and inner hyphens"
    return None


def allowed_host_problem(value: str) -> Optional[str]:
    """One Django ALLOWED_HOSTS entry: a host name, `.domain` pattern or IPv4 address."""
    if value == "*":
        return "'*' would accept any Host header; list the host names instead"
    name = value[1:] if value.startswith(".") else value
    if is_hostname(name) or is_ipv4(name):
        return None
    return f"{show(value)} is not a host name, .domain pattern or IPv4 address"


def custom_domain_problem(value: str) -> Optional[str]:
    host = value.split("/", 1)[0].rsplit(":", 1)[0] if "://" not in value else ""
    if not host or not (is_hostname(host) or is_ipv4(host)):
        return (f"{show(value)} must be a host name without a scheme "
                "(e.g. cdn.example.com or s3.example.com/bucket)")
    return None


def stack_name_problem(value: str) -> Optional[str]:
    if not _STACK_NAME.match(value):
        return f"{show(value)} is not a fully qualified stack name (org/project/stack)"
    return None


PLATFORMS = ("linux/amd64", "linux/arm64", "linux/arm/v7", "linux/386", "linux/ppc64le",
             "linux/s390x", "linux/riscv64")


def platform_problem(value: str) -> Optional[str]:
    if value not in PLATFORMS:
        return f"{show(value)} is not a Docker platform of Linux servers ({', '.join(PLATFORMS)})"
    return None


def image_problem(value: str) -> Optional[str]:
    if re.search(r"\s", value):
        return f"{show(value)} is not an image reference"
    return None


def region_problem(value: str) -> Optional[str]:
    if not _REGION.fullmatch(value):
        return f"{show(value)} is not a region name (e.g. us-east-1)"
    return None


def bucket_problem(value: str) -> Optional[str]:
    valid = (
        _BUCKET.match(value)
        and ".." not in value
        and not _DOTTED_NUMBERS.match(value)
        and not value.startswith("xn--")
        and not value.endswith("-s3alias")
    )
    if not valid:
        return (f"{show(value)} is not a valid S3 bucket name (3-63 lowercase letters, digits, "
                "dots and hyphens, starting and ending with a letter or digit)")
    return None


# --------------------------------------------------------------------------- addresses

def ipv4_problem(value: str) -> Optional[str]:
    """Why `value` is not a usable IPv4 host address, or None."""
    try:
        address = ipaddress.IPv4Address(value)
    except ValueError:
        return f"{show(value)} is not an IPv4 address"
    if address.is_unspecified or address.is_loopback or address.is_multicast:
        return f"{show(value)} is not a usable host address"
    return None


def client_address_problem(value: str) -> Optional[str]:
    """Why `value` is not one private IPv4 host (a database client), or None."""
    if "/" in value:
        return (f"{show(value)} is a network; list each client's address "
                "(pg_hba admits one host per line)")
    problem = ipv4_problem(value)
    if problem:
        return problem
    if ipaddress.IPv4Address(value).is_global:
        return (f"{show(value)} is a public address; list the client's private address "
                "(the database listens on its own only)")
    return None


def ssh_address_problem(value: str) -> Optional[str]:
    """`address` (how SSH reaches a host) may be an IPv4 address or a DNS name."""
    if _DOTTED_NUMBERS.match(value):
        return ipv4_problem(value)
    if is_hostname(value):
        return None
    return f"{show(value)} is not an IPv4 address or a DNS name"


def cidr_problem(value: str) -> tuple[Optional[str], Optional[str]]:
    """(normalized CIDR, problem): IPv4 or IPv6. A bare address means that one host (/32,
    /128). IPv6 is spelled as Python and ufw print it (compressed, lower case)."""
    try:
        if "%" in value:  # a zone (fe80::1%eth0) names an interface, not a network
            raise ValueError(value)
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        return None, (f"{show(value)} is not an IPv4 or IPv6 CIDR "
                      "(e.g. 198.51.100.0/24, 2001:db8:1::/48)")
    if "/" in value:
        try:
            ipaddress.ip_network(value)
        except ValueError:
            return None, f"{show(value)} has host bits set (did you mean {network}?)"
    return str(network), None


# --------------------------------------------------------------------------- SSH

def unix_user_problem(value: str) -> Optional[str]:
    if not _UNIX_USER.match(value):
        return f"{show(value)} is not a valid user name"
    return None


def host_key_problem(value: str) -> Optional[str]:
    match = _HOST_KEY.match(value)
    if match and value.startswith(("ssh-rsa ", "ssh-dss ")):
        # pulumi-command pins HostKeyAlgorithms to the pinned key's type (provider/pkg/
        # provider/remote/connection.go, SSHConfig: `[]string{publicKey.Type()}`): for an
        # RSA key that is "ssh-rsa", SHA-1 signatures, which OpenSSH >= 8.8 refuses.
        kind = value.split()[0]
        return (f"{kind} host keys cannot be pinned (the SSH client would insist on "
                f"{'SHA-1 RSA signatures, which OpenSSH 8.8 and later refuse' if kind == 'ssh-rsa' else 'DSA, which OpenSSH 7.0 and later refuse'}); "
                "pin the host's ed25519 or ecdsa key: ssh-keyscan -t ed25519 <address>")
    if match:
        try:
            base64.b64decode(match.group("blob"), validate=True)
            return None
        except (binascii.Error, ValueError):
            pass
    return (f"{show(value)} is not a public host key "
            "('<type> <base64>', as printed by ssh-keyscan without the host name)")


def key_file_problem(path: str) -> Optional[str]:
    """A private key file that exists and holds a PRIVATE KEY block (checked at `up`)."""
    if not os.path.exists(path):
        return f"{show(path)} does not exist"
    if not os.path.isfile(path):
        return f"{show(path)} is not a file"
    try:
        with open(path, encoding="utf-8", errors="replace") as key_file:
            head = key_file.read(4096)
    except OSError:
        return f"{show(path)} is not readable"
    if not re.search(r"-----BEGIN [A-Z ]*PRIVATE KEY-----", head):
        return f"{show(path)} is not a private key file (no '-----BEGIN ... PRIVATE KEY-----' line)"
    return None


# --------------------------------------------------------------------------- PostgreSQL

def sql_identifier_problem(value: str) -> Optional[str]:
    if not _SQL_IDENTIFIER.match(value):
        return (f"{show(value)} is not a safe SQL identifier (lowercase letters, digits and _, "
                "starting with a letter or _, at most 63 characters)")
    if value in POSTGRES_RESERVED:
        return f"{show(value)} is a reserved word in PostgreSQL"
    return None


def db_user_problem(value: str) -> Optional[str]:
    if value == "postgres":
        return "'postgres' is the PostgreSQL superuser; choose another role name"
    if value.startswith("pg_"):
        return f"{show(value)}: role names starting with pg_ are reserved by PostgreSQL"
    return sql_identifier_problem(value)


def postgres_version_problem(value: str) -> Optional[str]:
    if not _POSTGRES_VERSION.match(value):
        return f"{show(value)} is not a PostgreSQL major version (e.g. 16)"
    return None


# --------------------------------------------------------------------------- Django, nginx

def django_username_problem(value: str) -> Optional[str]:
    if not _DJANGO_USERNAME.match(value):
        return (f"{show(value)} is not a valid Django user name "
                "(letters, digits and @.+-_, at most 150 characters)")
    return None


def log_level_problem(value: str) -> Optional[str]:
    if value not in LOG_LEVELS:
        return f"{show(value)} is not one of {', '.join(LOG_LEVELS)}"
    return None


def nginx_time_problem(value: str) -> Optional[str]:
    if not NGINX_TIME.match(value):
        return f"{show(value)} is not an nginx time (e.g. 500ms, 1s, 2m)"
    return None


def nginx_size_problem(value: str) -> Optional[str]:
    if not NGINX_SIZE.match(value):
        return f"{show(value)} is not an nginx size (e.g. 512k, 10m, 1g)"
    return None
