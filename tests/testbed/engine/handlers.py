"""Every resource type the stand-in implements, by type token. Anything else is refused."""
from __future__ import annotations

from .base import Handler
from .command import CopyToRemote, LocalCommand, RemoteCommand
from .random_text import RandomPassword
from .stack_reference import StackReference

HANDLERS: dict[str, Handler] = {h.TYPE: h for h in [
    RemoteCommand(), LocalCommand(), CopyToRemote(), RandomPassword(), StackReference()]}
