"""`ops logs`: every host's lines, prefixed by the host, in time order.

Docker stamps each line of a container's log (`docker logs --timestamps`, RFC 3339 in UTC),
the journal writes ISO 8601 with the zone, PostgreSQL's log lines start with
`YYYY-MM-DD HH:MM:SS.mmm ZONE`. Without `-f`, the hosts' lines are merged by those times (a
line without one, such as the rest of a multi-line entry, stays after the line before it);
with `-f`, lines are printed as they come.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Iterable, Optional, Sequence

_TIME = re.compile(
    r"^(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?\s?"
    r"(Z|[+-]\d\d(?::?\d\d)?|UTC|GMT)?(?=\s|$)")
_DURATION = re.compile(r"([1-9][0-9]*)([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_EARLIEST = datetime.min.replace(tzinfo=timezone.utc)


def parse_duration(text: str) -> int:
    """`--since`: `90s`, `15m`, `2h`, `1d` or a number of seconds -> seconds."""
    match = _DURATION.fullmatch(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a duration (e.g. 90s, 15m, 2h, 1d)")
    return int(match.group(1)) * _UNITS[match.group(2)]


def parse_time(line: str) -> Optional[datetime]:
    """The time a log line starts with (UTC when it names no zone); None without one."""
    match = _TIME.match(line)
    if not match:
        return None
    day, clock, fraction, zone = match.groups()
    moment = datetime.fromisoformat(f"{day}T{clock}")
    if fraction:
        moment += timedelta(microseconds=int(fraction[:6].ljust(6, "0")))
    offset = timedelta(0)
    if zone and zone[0] in "+-":
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
        offset = -offset if zone[0] == "-" else offset
    return moment.replace(tzinfo=timezone(offset))


def prefixer(names: Iterable[str]):
    """host name -> `"<name> | "`, names padded to one width."""
    width = max((len(name) for name in names), default=0)
    return lambda name: f"{name:<{width}} | "


def merge(lines_by_host: Sequence[tuple[str, Sequence[str]]]) -> list[str]:
    """Every host's lines in one list, in time order, each prefixed by its host."""
    prefix = prefixer(name for name, _ in lines_by_host)
    keyed = []
    for order, (name, lines) in enumerate(lines_by_host):
        moment = _EARLIEST
        for number, line in enumerate(lines):
            moment = parse_time(line) or moment
            keyed.append(((moment, order, number), prefix(name) + line))
    return [line for _, line in sorted(keyed, key=lambda pair: pair[0])]
