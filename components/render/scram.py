"""The database role's password as PostgreSQL stores it: a SCRAM-SHA-256 verifier.

`ALTER ROLE ... PASSWORD '<verifier>'` stores a verifier as it is, so the role's setup sends
this instead of the password and the plaintext never reaches PostgreSQL (not its log, not a
failed statement's text, not `pg_stat_activity`). The format is PostgreSQL's
(src/common/scram-common.c, scram_build_secret), from RFC 5802 / RFC 7677:

    SCRAM-SHA-256$<iterations>:<salt, base64>$<StoredKey, base64>:<ServerKey, base64>

    SaltedPassword = PBKDF2-HMAC-SHA-256(password, salt, iterations)
    StoredKey      = SHA-256(HMAC(SaltedPassword, "Client Key"))
    ServerKey      = HMAC(SaltedPassword, "Server Key")

The salt is derived from the password and the role name, not drawn at random: the step that
sends the verifier re-runs when its stdin changes, so a random salt would re-run it (and
rewrite the role) on every deploy. What a random salt buys is that equal passwords give
different verifiers and that no table can be computed before the verifier is seen. The
password is a 32-character random one that no other role has, so no two verifiers share
it, and a table for it is as out of reach as guessing it (~190 bits). The derivation is
PBKDF2 with the same iteration count, so the salt offers no faster way to test a guess
than the verifier itself. The role name is in it so that the same password for two roles
still gives two salts.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Optional

ITERATIONS = 4096  # PostgreSQL's default (scram_iterations); libpq repeats it per login
SALT_BYTES = 16  # as PostgreSQL's own (SCRAM_DEFAULT_SALT_LEN)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def derived_salt(password: str, role: str, iterations: int = ITERATIONS) -> bytes:
    """The salt for `role`'s verifier: a function of the password and the role only."""
    return hashlib.pbkdf2_hmac("sha256", password.encode(), b"djscale scram salt:" +
                               role.encode(), iterations, SALT_BYTES)


def scram_sha256_verifier(password: str, role: str, *, salt: Optional[bytes] = None,
                          iterations: int = ITERATIONS) -> str:
    """PostgreSQL's stored form of `password` for `role` (see the module docstring).

    Printable ASCII only: PostgreSQL normalizes a password with SASLprep first, which leaves
    printable ASCII as it is; anything else is refused rather than normalized differently.
    The error never shows the password."""
    if not password or any(not " " <= c <= "~" for c in password):
        raise ValueError("the database password must be non-empty printable ASCII")
    salt = derived_salt(password, role, iterations) if salt is None else salt
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return (f"SCRAM-SHA-256${iterations}:{_b64(salt)}"
            f"${_b64(stored_key)}:{_b64(server_key)}")
