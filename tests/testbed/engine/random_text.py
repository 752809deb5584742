"""`random:index/randomPassword:RandomPassword` (pulumi-random 4.21, bridging
hashicorp/terraform-provider-random: internal/provider/resource_password.go)."""
from __future__ import annotations

import secrets
import string

from .base import DeployError, Handler, key_paths


class RandomPassword(Handler):
    """Create generates (random.CreateString's rules: the minimums first, then any enabled
    class, shuffled); every input is RequiresReplace, so any change replaces; Read and
    Delete do nothing (passwordResource.Read: "Read does not need to perform any
    operations"; Delete: the state is simply dropped)."""

    TYPE = "random:index/randomPassword:RandomPassword"
    KEYS = frozenset({"length", "special", "upper", "lower", "numeric", "number", "minUpper",
                      "minLower", "minNumeric", "minSpecial", "overrideSpecial", "keepers",
                      "keepers.*"})
    SPECIAL = "!@#$%&*()-_=+[]{}<>:?"  # the provider's default special characters

    def check(self, inputs):
        return [p for p in key_paths(inputs) if p not in self.KEYS
                and not p.startswith("keepers.")]

    def replace_keys(self, replace_on_changes):
        return {*self.KEYS, *super().replace_keys(replace_on_changes)}

    @classmethod
    def generate(cls, inputs: dict) -> str:
        rng = secrets.SystemRandom()
        special = inputs.get("overrideSpecial") or cls.SPECIAL
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
        return "none", {"result": self.generate(inputs)}

    def fake_outputs(self, inputs):
        return {"result": "x" * int(inputs.get("length", 16))}
