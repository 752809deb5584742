r"""Value rules: pure functions that say why one config value is unusable, or return None.

Each rule is written once and used by the config parser (through the key declarations in
components/config/schema.py) and, where a renderer checks its input again, by that renderer.
A problem text never contains the key path: the reader adds it.

Every pattern is matched whole (`fullmatch`): with `re.match` and `$`, "evil\n" matched a
pattern of letters, because `$` also matches before a final line break. Digits are ASCII
(`[0-9]`, not `\d`, which takes any script's digits). Before any rule runs, every string
value has passed `text_problem` (components/config/keys.py, Text): no control character and
no whitespace at either end, so no rule and no renderer sees one.
"""
from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import os
import re
import struct
import unicodedata
from typing import Any, Optional
from urllib.parse import urlsplit

# ASCII: with IGNORECASE alone, [a-z] also matches the Kelvin sign and the long s (U+212A,
# U+017F), which case-fold to k and s.
_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", re.IGNORECASE | re.ASCII)
_DOTTED_NUMBERS = re.compile(r"[0-9.]+")
_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@(?P<domain>[^@]+)")
_SQL_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_HOST_KEY = re.compile(
    r"(?P<type>ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)"
    r"|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com) (?P<blob>[A-Za-z0-9+/]+={0,2})"
)
_STACK_NAME = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_HOST_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_UNIX_USER = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
_DJANGO_USERNAME = re.compile(r"[\w.@+-]{1,150}")  # Django's UnicodeUsernameValidator
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_POSTGRES_VERSION = re.compile(r"[0-9]+(\.[0-9]+)?")
# The PostgreSQL major version each supported distribution ships (its `postgresql` package
# depends on `postgresql-<major>`). djscale installs from the distribution only, not from
# PostgreSQL's own apt repository (PGDG): another version has no package to install.
POSTGRES_SHIPPED = {"14": "Ubuntu 22.04", "15": "Debian 12", "16": "Ubuntu 24.04",
                    "17": "Debian 13"}
_REGION = re.compile(r"[A-Za-z0-9-]+")
# An S3 access key id: AWS (16-128 of A-Z0-9: AKIA..., ASIA...), DigitalOcean Spaces (DO00...),
# MinIO (any user name of 3 or more characters; it refuses `=` and `,`), GCS HMAC, R2, B2.
_ACCESS_KEY_ID = re.compile(r"[A-Za-z0-9._@+-]{3,128}")
# RFC 3986's characters: a URL holding anything else is refused, not cleaned (urlsplit would
# silently drop tabs and line breaks, and strip leading control characters).
_URL_CHARACTERS = re.compile(r"[A-Za-z0-9._~:/?#\[\]@!$&'()*+,;=%-]+")
_HOST_AND_PORT = re.compile(r"(?P<host>[^:/]+)(:(?P<port>[^:/]*))?")
_URL_PATH = re.compile(r"(/[A-Za-z0-9._~!$&'()*+,;=:@%-]*)*")
# Docker's reference grammar (distribution/reference, regexp.go): [domain[:port]/]path[:tag]
# [@digest]; a first component is a domain only if it has a `.` or `:` or is `localhost`.
_IMAGE_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE_DOMAIN = re.compile(
    r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
    r"(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?")
_IMAGE_NAME = re.compile(f"{_IMAGE_PATH_COMPONENT}(?:/{_IMAGE_PATH_COMPONENT})*")
_IMAGE_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_IMAGE_DIGEST = re.compile(
    r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")
# nginx's own syntax for times and sizes (ngx_parse_time / ngx_parse_size); a bare number
# means seconds / bytes. The one definition: the nginx renderer checks against these too.
NGINX_TIME = re.compile(r"[0-9]+(ms|s|m)?")
NGINX_SIZE = re.compile(r"[0-9]+[kKmMgG]?")
NGINX_RATE = re.compile(r"[1-9][0-9]*r/[sm]")  # limit_req_zone's rate
# A path as nginx compares it with `location =` after normalizing the request's (decoded,
# slashes merged, dot segments resolved): so no %-escapes, `//`, `.` or `..` segments,
# query, and nothing that could end the directive.
URL_PATH = re.compile(r"/[A-Za-z0-9._~@:+-]*(/[A-Za-z0-9._~@:+-]+)*/?")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# pg_hba.conf words with a meaning of their own in the database and user columns: a database
# or role of that name could not be written there unquoted (components/render/postgres.py).
PG_HBA_KEYWORDS = frozenset({"all", "sameuser", "samerole", "samegroup", "replication"})

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


# --------------------------------------------------------------------------- any text

def _control_character(value: str) -> Optional[str]:
    """The first control character of `value` as U+XXXX: Unicode Cc (C0, DEL, C1), Cf
    (zero-width, bidi controls) and the line and paragraph separators."""
    for char in value:
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp"):
            return f"U+{ord(char):04X}"
    return None


def text_problem(value: str) -> Optional[str]:
    """Any string of the config: used exactly as written, or refused; never cleaned.

    A control character is refused, and so is whitespace at either end: a value is not
    stripped (`pulumi config set` of a pasted value with a trailing newline, a name with a
    stray space) but named, so what is deployed is what is written.
    """
    control = _control_character(value)
    if control:
        return f"{show(value)} contains a control character ({control})"
    if value != value.strip():
        return f"{show(value)} has leading or trailing whitespace"
    return None


def secret_line_problem(value: str) -> Optional[str]:
    """A secret that lands on one line of a file (the env file): `text_problem`'s rules,
    with a problem text that never shows the value."""
    control = _control_character(value)
    if control:
        return f"contains a control character ({control}); the value is not shown (it is a secret)"
    if value != value.strip():
        return ("has leading or trailing whitespace (a line break from `< file`?); the value "
                "is not shown (it is a secret)")
    return None


# --------------------------------------------------------------------------- names

def is_hostname(value: str, min_labels: int = 1) -> bool:
    """A DNS host name: dot-separated labels of letters, digits and inner hyphens."""
    if not value or len(value) > 253 or value.endswith("."):
        return False
    labels = value.split(".")
    if len(labels) < min_labels or not all(_LABEL.fullmatch(label) for label in labels):
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


def domain_alias_problem(value: str) -> Optional[str]:
    """One of `domainAliases`: a DNS name the certificate (HTTP-01) can cover."""
    if "*" in value:
        return (f"{show(value)} is a wildcard: djscale proves each name with an HTTP-01 "
                "challenge, and a wildcard can only be proven over DNS-01 (Let's Encrypt "
                "issues wildcards no other way); list each name")
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return domain_problem(value)
    return (f"{show(value)} is an IP address: the certificate and nginx's server_name need "
            "DNS names (point a name at the proxy and list that)")


ALIAS_MODES = ("redirect", "serve")


def alias_mode_problem(value: str) -> Optional[str]:
    if value not in ALIAS_MODES:
        return f"{show(value)} is not one of {', '.join(ALIAS_MODES)}"
    return None


def email_problem(value: str) -> Optional[str]:
    match = _EMAIL.fullmatch(value)
    if not match or not is_hostname(match.group("domain"), min_labels=2):
        return f"{show(value)} is not an email address"
    return None


def _host_port_problem(value: str, host_and_port: str) -> Optional[str]:
    """`host[:port]`: a DNS name or IPv4 address, and a port 1-65535 when one is given."""
    match = _HOST_AND_PORT.fullmatch(host_and_port)
    host = match.group("host") if match else ""
    if not (is_hostname(host) or is_ipv4(host)):
        return f"{show(value)} has no valid host (a DNS name or IPv4 address)"
    port = match.group("port")
    if port is not None and not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
        return f"{show(value)} has an invalid port (1-65535)"
    return None


def url_problem(value: str, schemes: tuple[str, ...]) -> Optional[str]:
    """`scheme://host[:port][/path]`, checked as written, before urlsplit sees it."""
    wanted = " or ".join(f"{scheme}://" for scheme in schemes)
    if not _URL_CHARACTERS.fullmatch(value):
        return (f"{show(value)} is not a URL (only letters, digits and "
                "-._~:/?#[]@!$&'()*+,;=% may appear)")
    scheme, separator, _ = value.partition("://")
    if scheme not in schemes or not separator:
        return f"{show(value)} must be an {wanted} URL"
    try:
        parts = urlsplit(value)
    except ValueError:  # an unbalanced `[` or `]` (urlsplit reads it as an IPv6 literal)
        return f"{show(value)} has no valid host (a DNS name or IPv4 address)"
    if parts.query or parts.fragment or "?" in value or "#" in value:
        return f"{show(value)} must not have a query or fragment"
    if "@" in parts.netloc:
        return f"{show(value)} must not contain a user name or password"
    return _host_port_problem(value, parts.netloc)


def https_url_problem(value: str) -> Optional[str]:
    return url_problem(value, ("https",))


def http_url_problem(value: str) -> Optional[str]:
    return url_problem(value, ("http", "https"))


def host_name_problem(value: str) -> Optional[str]:
    """A name of ours used in resource names (`app1`, `canary`)."""
    if not _HOST_NAME.fullmatch(value):
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
    """`host[:port][/path]` without a scheme: what django-storages puts before a file name."""
    host_and_port, slash, path = value.partition("/")
    if "://" in value or not host_and_port or not _URL_PATH.fullmatch(slash + path):
        return (f"{show(value)} must be a host name without a scheme "
                "(e.g. cdn.example.com or s3.example.com/bucket)")
    return _host_port_problem(value, host_and_port)


def stack_name_problem(value: str) -> Optional[str]:
    if not _STACK_NAME.fullmatch(value):
        return f"{show(value)} is not a fully qualified stack name (org/project/stack)"
    return None


PLATFORMS = ("linux/amd64", "linux/arm64", "linux/arm/v7", "linux/386", "linux/ppc64le",
             "linux/s390x", "linux/riscv64")


def platform_problem(value: str) -> Optional[str]:
    if value not in PLATFORMS:
        return f"{show(value)} is not a Docker platform of Linux servers ({', '.join(PLATFORMS)})"
    return None


def _is_image_reference(value: str) -> bool:
    name, at, digest = value.partition("@")
    if at and not _IMAGE_DIGEST.fullmatch(digest):
        return False
    last_slash = name.rfind("/")
    if ":" in name[last_slash + 1:]:
        name, _, tag = name.rpartition(":")
        if not _IMAGE_TAG.fullmatch(tag):
            return False
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        if not _IMAGE_DOMAIN.fullmatch(first):
            return False
        name = rest
    return len(value.partition("@")[0]) <= 255 and bool(_IMAGE_NAME.fullmatch(name))


def image_problem(value: str) -> Optional[str]:
    if not _is_image_reference(value):
        return (f"{show(value)} is not an image reference "
                "([registry[:port]/]name[:tag][@digest], e.g. python:3.12-slim)")
    return None


def region_problem(value: str) -> Optional[str]:
    if not _REGION.fullmatch(value):
        return f"{show(value)} is not a region name (e.g. us-east-1)"
    return None


def bucket_problem(value: str) -> Optional[str]:
    valid = (
        _BUCKET.fullmatch(value)
        and ".." not in value
        and not _DOTTED_NUMBERS.fullmatch(value)
        and not value.startswith("xn--")
        and not value.endswith("-s3alias")
    )
    if not valid:
        return (f"{show(value)} is not a valid S3 bucket name (3-63 lowercase letters, digits, "
                "dots and hyphens, starting and ending with a letter or digit)")
    return None


def access_key_id_problem(value: str) -> Optional[str]:
    if not _ACCESS_KEY_ID.fullmatch(value):
        return (f"{show(value)} is not an access key id "
                "(3 to 128 letters, digits and . _ - @ +)")
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
    if _DOTTED_NUMBERS.fullmatch(value):
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
    if not _UNIX_USER.fullmatch(value):
        return f"{show(value)} is not a valid user name"
    return None


def _ssh_strings(blob: bytes) -> Optional[list[bytes]]:
    """The SSH wire strings (uint32 length, bytes) a public key blob is made of, or None."""
    fields, at = [], 0
    while at < len(blob):
        if at + 4 > len(blob):
            return None
        (length,) = struct.unpack(">I", blob[at:at + 4])
        at += 4
        if at + length > len(blob):
            return None
        fields.append(blob[at:at + length])
        at += length
    return fields


def _is_key_blob(kind: str, blob: bytes) -> bool:
    """The blob is a public key of `kind`: its own type name, then that type's fields
    (RFC 8709 ed25519: 32-byte key; RFC 5656 ecdsa: curve name, point; OpenSSH's sk- keys
    add the application)."""
    fields = _ssh_strings(blob)
    if not fields or fields[0] != kind.encode():
        return False
    if kind == "ssh-ed25519":
        return len(fields) == 2 and len(fields[1]) == 32
    if kind == "sk-ssh-ed25519@openssh.com":
        return len(fields) == 3 and len(fields[1]) == 32
    curve = kind.split("@")[0].rsplit("-", 1)[-1].encode()  # nistp256, nistp384, nistp521
    count = 4 if kind.startswith("sk-") else 3
    return len(fields) == count and fields[1] == curve and len(fields[2]) > 0


def host_key_problem(value: str) -> Optional[str]:
    match = _HOST_KEY.fullmatch(value)
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
            blob = base64.b64decode(match.group("blob"), validate=True)
        except (binascii.Error, ValueError):
            blob = b""
        if _is_key_blob(match.group("type"), blob):
            return None
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


# --------------------------------------------------------------------------- backups

_KEY_PREFIX = re.compile(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*/?")


def key_prefix_problem(value: str) -> Optional[str]:
    """An S3 key prefix the backup scripts can write as it is: letters, digits, `._-` and
    `/` between segments; no leading `/`, empty or dot-only segment."""
    segments = value.rstrip("/").split("/")
    if (not _KEY_PREFIX.fullmatch(value) or len(value) > 200
            or any(segment in (".", "..") for segment in segments)):
        return (f"{show(value)} is not a key prefix (letters, digits and ._- in segments "
                "separated by /, at most 200 characters, e.g. backups/ or prod/db-)")
    return None


def passphrase_problem(value: str) -> Optional[str]:
    """gpg reads the first line of its passphrase file: one line, long enough to resist a
    guess (the value is never shown)."""
    problem = secret_line_problem(value)
    if problem:
        return problem
    if len(value) < 16:
        return "is shorter than 16 characters; the value is not shown (it is a secret)"
    return None


_CALENDAR_SHORTHANDS = ("minutely", "hourly", "daily", "weekly", "monthly", "yearly",
                        "annually", "quarterly", "semiannually")
_WEEKDAY = r"(mon(day)?|tue(sday)?|wed(nesday)?|thu(rsday)?|fri(day)?|sat(urday)?|sun(day)?)"
_WEEKDAYS = re.compile(rf"{_WEEKDAY}(\.\.{_WEEKDAY})?(,{_WEEKDAY}(\.\.{_WEEKDAY})?)*",
                       re.IGNORECASE | re.ASCII)
_CALENDAR_VALUE = re.compile(
    r"(\*|(?P<a>[0-9]{1,4})(\.\.(?P<b>[0-9]{1,4}))?)(/(?P<r>[0-9]{1,4}))?")


def _calendar_component(text: str, low: int, high: int) -> bool:
    """A comma list of `*`, N, N..M, each optionally /R, with N and M within low..high."""
    for value in text.split(","):
        match = _CALENDAR_VALUE.fullmatch(value)
        if not match or match["r"] == "0" or (match["r"] and int(match["r"]) > high):
            return False
        for number in (match["a"], match["b"]):
            if number is not None and not low <= int(number) <= high:
                return False
        if match["b"] is not None and int(match["b"]) < int(match["a"]):
            return False
    return True


def calendar_problem(value: str) -> Optional[str]:
    """A systemd calendar event (systemd.time(7), "Calendar Events") of the common forms:
    a shorthand (`daily`), or `[weekdays] [[year-]month-day] hour:minute[:second] [UTC]`
    with `*`, lists, ranges (`..`) and repetitions (`/`). The deploy checks it again with
    `systemd-analyze calendar` before the timer takes it."""
    problem = (f"{show(value)} is not a systemd calendar event (e.g. daily, "
               "*-*-* 03:00:00, Mon..Fri 02:30, *-*-* 00/6:00:00)")
    if value.lower() in _CALENDAR_SHORTHANDS:
        return None
    words = value.split()
    if words and words[-1] == "UTC":
        words = words[:-1]
    if words and _WEEKDAYS.fullmatch(words[0]):
        words = words[1:]
    if not 1 <= len(words) <= 2:
        return problem
    if len(words) == 2:
        date = words[0].split("-")
        limits = [(1970, 2199), (1, 12), (1, 31)][-len(date):] if len(date) in (2, 3) else []
        if not limits or not all(_calendar_component(part, *limit)
                                 for part, limit in zip(date, limits)):
            return problem
    time = words[-1].split(":")
    if len(time) not in (2, 3) or not all(
            _calendar_component(part, 0, limit)
            for part, limit in zip(time, (23, 59, 59))):
        return problem
    return None


MAINTENANCE_PAGE_MAX_BYTES = 1024 * 1024


def page_file_problem(path: str) -> Optional[str]:
    """The maintenance page: a file that exists, is UTF-8 text and at most 1 MiB (nginx
    sends it with every answer while maintenance mode is on)."""
    if not os.path.exists(path):
        return f"{show(path)} does not exist"
    if not os.path.isfile(path):
        return f"{show(path)} is not a file"
    try:
        with open(path, "rb") as page:
            content = page.read(MAINTENANCE_PAGE_MAX_BYTES + 1)
    except OSError:
        return f"{show(path)} is not readable"
    if len(content) > MAINTENANCE_PAGE_MAX_BYTES:
        return f"{show(path)} is larger than 1 MiB"
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return f"{show(path)} is not UTF-8 text"
    return None


# --------------------------------------------------------------------------- PostgreSQL

def sql_identifier_problem(value: str) -> Optional[str]:
    if not _SQL_IDENTIFIER.fullmatch(value):
        return (f"{show(value)} is not a safe SQL identifier (lowercase letters, digits and _, "
                "starting with a letter or _, at most 63 characters)")
    if value in POSTGRES_RESERVED:
        return f"{show(value)} is a reserved word in PostgreSQL"
    if value in PG_HBA_KEYWORDS:
        return f"{show(value)} is a keyword of pg_hba.conf"
    return None


def db_user_problem(value: str) -> Optional[str]:
    if value == "postgres":
        return "'postgres' is the PostgreSQL superuser; choose another role name"
    if value.startswith("pg_"):
        return f"{show(value)}: role names starting with pg_ are reserved by PostgreSQL"
    return sql_identifier_problem(value)


def postgres_version_problem(value: str) -> Optional[str]:
    if not _POSTGRES_VERSION.fullmatch(value):
        return f"{show(value)} is not a PostgreSQL major version (e.g. 16)"
    if value not in POSTGRES_SHIPPED:
        shipped = ", ".join(f"{v} ({distro})" for v, distro in POSTGRES_SHIPPED.items())
        return (f"{show(value)} is not shipped by a supported distribution ({shipped}); "
                "djscale installs the distribution's package and does not add PostgreSQL's "
                "own apt repository (PGDG). Set the version the database host's "
                "distribution ships, or null for whatever it ships")
    return None


# --------------------------------------------------------------------------- Django, nginx

def django_username_problem(value: str) -> Optional[str]:
    if not _DJANGO_USERNAME.fullmatch(value):
        return (f"{show(value)} is not a valid Django user name "
                "(letters, digits and @.+-_, at most 150 characters)")
    return None


def dockerfile_path_problem(value: str) -> Optional[str]:
    """`app.dockerfile`: a relative path that stays inside the build context."""
    segments = value.split("/")
    if value.startswith("/") or "\\" in value or any(s in ("", ".", "..") for s in segments):
        return (f"{show(value)} must be a relative path inside app.source (no leading /, "
                "no empty, . or .. segment, no backslash)")
    return None


def env_name_problem(value: str) -> Optional[str]:
    """An environment variable's name, as POSIX shells and Docker's env file take it."""
    if not _ENV_NAME.fullmatch(value):
        return (f"{show(value)} is not an environment variable name (letters, digits and _, "
                "not starting with a digit)")
    return None


def log_level_problem(value: str) -> Optional[str]:
    if value not in LOG_LEVELS:
        return f"{show(value)} is not one of {', '.join(LOG_LEVELS)}"
    return None


def nginx_time_problem(value: str) -> Optional[str]:
    if not NGINX_TIME.fullmatch(value):
        return f"{show(value)} is not an nginx time (e.g. 500ms, 1s, 2m)"
    return None


def nginx_size_problem(value: str) -> Optional[str]:
    if not NGINX_SIZE.fullmatch(value):
        return f"{show(value)} is not an nginx size (e.g. 512k, 10m, 1g)"
    return None


def nginx_time_ms(value: str) -> int:
    """An nginx time (`NGINX_TIME`) in milliseconds; a bare number is seconds."""
    number, unit = re.fullmatch(r"([0-9]+)(ms|s|m)?", value).groups()
    return int(number) * {"ms": 1, "s": 1000, "m": 60000, None: 1000}[unit]


def nginx_rate_problem(value: str) -> Optional[str]:
    if not NGINX_RATE.fullmatch(value):
        return f"{show(value)} is not an nginx rate (requests per second or minute: 10r/s, 6r/m)"
    return None


def url_path_problem(value: str) -> Optional[str]:
    segments = value.split("/")[1:]
    if not URL_PATH.fullmatch(value) or any(seg in (".", "..") for seg in segments) \
            or "//" in value:
        return (f"{show(value)} is not a plain URL path (starts with /; letters, digits and "
                "._~@:+-; no %-escapes, query, // or dot segments)")
    return None


def batch_size_problem(value: str) -> Optional[str]:
    """`rollout.batchSize`: a count of servers (>= 1) or a percentage (1% to 100%)."""
    count = re.fullmatch(r"[1-9][0-9]{0,3}", value)
    percent = re.fullmatch(r"([1-9][0-9]?|100)%", value)
    if not (count or percent):
        return f"{show(value)} is not a count of servers (e.g. 2) or a percentage (e.g. 25%)"
    return None


APP_RELEASES = ("current", "previous")  # app.release, besides an image id
_IMAGE_ID = re.compile(r"sha256:[0-9a-f]{64}")


def app_release_problem(value: str) -> Optional[str]:
    """`app.release`: `current`, `previous` or a full image id (`sha256:` + 64 hex)."""
    if value in APP_RELEASES or _IMAGE_ID.fullmatch(value):
        return None
    return (f"{show(value)} is not a release: `current` (the image built from assets/app), "
            "`previous` or an image id (sha256: and 64 hex digits, as "
            "`python -m components.ops status` prints it)")
