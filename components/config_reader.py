"""Reading a stack's raw config mapping with key paths, collecting problems instead of raising.

Used only by `components/config.py`. Two parts:
- value rules: pure functions that return a problem text (without the key path) or None;
- `Section`: one config object at a key path, with typed getters that record problems and
  return a usable placeholder, so that one pass finds every problem in the stack.
"""
from __future__ import annotations

import base64
import binascii
import difflib
import ipaddress
import json
import re
from typing import Any, Iterable, Optional
from urllib.parse import urlsplit

# --------------------------------------------------------------------------- value rules

_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", re.IGNORECASE)
_DOTTED_NUMBERS = re.compile(r"^[0-9.]+$")
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@([^@\s]+)$")
_SQL_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_HOST_KEY = re.compile(
    r"^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)"
    r"|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com) (?P<blob>[A-Za-z0-9+/]+={0,2})$"
)
_STACK_NAME = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
NGINX_TIME = re.compile(r"^\d+(ms|s|m)?$")
NGINX_SIZE = re.compile(r"^\d+[kKmMgG]?$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")

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


def is_hostname(value: str, min_labels: int = 1) -> bool:
    """A DNS host name: dot-separated labels of letters, digits and inner hyphens."""
    if not value or len(value) > 253 or value.endswith("."):
        return False
    labels = value.split(".")
    if len(labels) < min_labels or not all(_LABEL.match(label) for label in labels):
        return False
    return not labels[-1].isdigit()  # an all-numeric last label is a mistyped IPv4 address


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


def sql_identifier_problem(value: str) -> Optional[str]:
    if not _SQL_IDENTIFIER.match(value):
        return (f"{show(value)} is not a safe SQL identifier (lowercase letters, digits and _, "
                "starting with a letter or _, at most 63 characters)")
    if value in POSTGRES_RESERVED:
        return f"{show(value)} is a reserved word in PostgreSQL"
    return None


def host_key_problem(value: str) -> Optional[str]:
    match = _HOST_KEY.match(value)
    if match:
        try:
            base64.b64decode(match.group("blob"), validate=True)
            return None
        except (binascii.Error, ValueError):
            pass
    return (f"{show(value)} is not a public host key "
            "('<type> <base64>', as printed by ssh-keyscan without the host name)")


def stack_name_problem(value: str) -> Optional[str]:
    if not _STACK_NAME.match(value):
        return f"{show(value)} is not a fully qualified stack name (org/project/stack)"
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


def cidr_problem(value: str) -> tuple[Optional[str], Optional[str]]:
    """(normalized CIDR, problem). A bare address means that one host (/32)."""
    try:
        network = ipaddress.IPv4Network(value, strict=False)
    except ValueError:
        return None, f"{show(value)} is not an IPv4 CIDR (e.g. 198.51.100.0/24)"
    if "/" in value:
        try:
            ipaddress.IPv4Network(value)
        except ValueError:
            return None, f"{show(value)} has host bits set (did you mean {network}?)"
    return str(network), None


# --------------------------------------------------------------------------- key paths

class Problems:
    """Every problem found, in the order found, each starting with its key path."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(f"{path}: {message}")

    def __bool__(self) -> bool:
        return bool(self.items)


def child_path(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _decode_json(value: Any, kind: type) -> Any:
    """Pulumi hands objects and lists to the program as JSON strings: accept both forms."""
    if isinstance(value, str):
        try:
            decoded = json.loads(value)
        except ValueError:
            return value
        if isinstance(decoded, kind):
            return decoded
    return value


def _is_integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and value.is_integer()


class Section:
    """One config object at a key path. Getters record problems and never raise."""

    def __init__(self, problems: Problems, path: str, value: Any, known: Iterable[str]):
        self.problems = problems
        self.path = path
        self.data: dict = {}
        value = _decode_json(value, dict)
        if value is None:
            return
        if not isinstance(value, dict):
            problems.add(path, f"expected an object, got {show(value)}")
            return
        self.data = value
        self._report_unknown(sorted(value, key=str), list(known))

    def _report_unknown(self, keys: list, known: list[str]) -> None:
        for key in keys:
            if key in known:
                continue
            close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]}?)" if close else ""
            self.problems.add(child_path(self.path, str(key)), f"unknown key{hint}")

    def at(self, key: str) -> str:
        return child_path(self.path, key)

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def problem(self, key: str, message: str) -> None:
        self.problems.add(self.at(key), message)

    def section(self, key: str, known: Iterable[str]) -> "Section":
        return Section(self.problems, self.at(key), self.data.get(key), known)

    def text(self, key: str, default: Optional[str] = None, required: bool = False,
             missing: str = "is required") -> Optional[str]:
        value = self.data.get(key)
        if value is None:
            if required:
                self.problem(key, missing)
            return default
        if not isinstance(value, str):
            self.problem(key, f"expected a string, got {show(value)}")
            return default
        if not value.strip():
            self.problem(key, "must not be empty")
            return default
        return value.strip()

    def integer(self, key: str, default: Optional[int] = None,
                minimum: Optional[int] = None) -> Optional[int]:
        value = self.data.get(key)
        if value is None:
            return default
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            value = int(value)
        if not _is_integer(value):
            self.problem(key, f"expected an integer, got {show(value)}")
            return default
        value = int(value)
        if minimum is not None and value < minimum:
            self.problem(key, f"must be at least {minimum}, got {value}")
            return default
        return value

    def port(self, key: str, default: Optional[int] = None) -> Optional[int]:
        value = self.integer(key, default)
        if value is not None and not 1 <= value <= 65535:
            self.problem(key, f"{value} is not a port number (1-65535)")
            return default
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.data.get(key)
        if value is None:
            return default
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        if not isinstance(value, bool):
            self.problem(key, f"expected true or false, got {show(value)}")
            return default
        return value

    def items(self, key: str, required: bool = False, missing: str = "is required",
              empty: Optional[str] = None) -> list:
        value = _decode_json(self.data.get(key), list)
        if value is None:
            if required:
                self.problem(key, missing)
            return []
        if not isinstance(value, list):
            self.problem(key, f"expected a list, got {show(value)}")
            return []
        if not value and empty:
            self.problem(key, empty)
        return value

    def mapping(self, key: str) -> dict:
        value = _decode_json(self.data.get(key), dict)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.problem(key, f"expected an object, got {show(value)}")
            return {}
        return value

    def check(self, key: str, value: Optional[str], rule) -> Optional[str]:
        """Apply a value rule to a value read from `key`; None when absent or wrong."""
        if value is None:
            return None
        problem = rule(value)
        if problem:
            self.problem(key, problem)
            return None
        return value
