"""`random:index/randomPassword:RandomPassword` and `RandomString`."""
from __future__ import annotations

import secrets
import string

from .base import DeployError, Handler, key_paths


class RandomText(Handler):
    """RandomPassword / RandomString, as terraform-provider-random generates them."""

    KEYS = frozenset({"length", "special", "upper", "lower", "numeric", "number", "minUpper",
                      "minLower", "minNumeric", "minSpecial", "overrideSpecial", "keepers",
                      "keepers.*"})

    def __init__(self, type_: str):
        self.TYPE = type_

    def check(self, inputs):
        return [p for p in key_paths(inputs) if p not in self.KEYS
                and not p.startswith("keepers.")]

    def replaces(self, old, new, reg):
        return True

    @staticmethod
    def generate(inputs: dict) -> str:
        rng = secrets.SystemRandom()
        special = inputs.get("overrideSpecial") or "!@#$%&*()-_=+[]{}<>:?"
        sets = [("upper", "minUpper", string.ascii_uppercase),
                ("lower", "minLower", string.ascii_lowercase),
                ("numeric", "minNumeric", string.digits),
                ("special", "minSpecial", special)]
        numeric = inputs.get("numeric", inputs.get("number", True))
        chars, pool = [], ""
        for key, min_key, charset in sets:
            enabled = numeric if key == "numeric" else inputs.get(key, True)
            if enabled:
                pool += charset
                chars += [rng.choice(charset) for _ in range(int(inputs.get(min_key, 0)))]
        length = int(inputs["length"])
        if not pool or len(chars) > length:
            raise DeployError(f"random: impossible character rules {inputs}")
        chars += [rng.choice(pool) for _ in range(length - len(chars))]
        rng.shuffle(chars)
        return "".join(chars)

    def create(self, reg, inputs, ctx):
        result = self.generate(inputs)
        return "none", {"result": result}

    def fake_outputs(self, inputs):
        return {"result": "x" * int(inputs.get("length", 16))}
