"""The SCRAM-SHA-256 verifier: RFC 7677's example exchange checked against it, its format,
its salt. That PostgreSQL takes it and lets the password log in is proven against a real
cluster in tests/render/test_postgres.py."""
from __future__ import annotations

import base64
import hashlib
import hmac
import re

import pytest

from components.render.scram import derived_salt, scram_sha256_verifier

# RFC 7677, section 3: user "user", password "pencil".
RFC_SALT = "W22ZaJ0SNY7soEsUEjb6gQ=="
RFC_AUTH_MESSAGE = (
    "n=user,r=rOprNGfwEbeRWgbNEkqO,"
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,"
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0").encode()
RFC_CLIENT_PROOF = "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
RFC_SERVER_SIGNATURE = "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

VERIFIER = re.compile(r"^SCRAM-SHA-256\$(\d+):([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):"
                      r"([A-Za-z0-9+/=]+)$")


def _parts(verifier: str) -> tuple[int, bytes, bytes, bytes]:
    iterations, salt, stored, server = VERIFIER.match(verifier).groups()
    return int(iterations), *(base64.b64decode(v) for v in (salt, stored, server))


def test_the_rfc_7677_exchange_verifies_against_the_keys():
    """A server holding this verifier accepts RFC 7677's client proof and answers with the
    RFC's server signature: StoredKey and ServerKey are right."""
    verifier = scram_sha256_verifier("pencil", "user", salt=base64.b64decode(RFC_SALT))
    iterations, salt, stored_key, server_key = _parts(verifier)
    assert (iterations, base64.b64encode(salt).decode()) == (4096, RFC_SALT)
    client_signature = hmac.new(stored_key, RFC_AUTH_MESSAGE, hashlib.sha256).digest()
    client_key = bytes(a ^ b for a, b in zip(base64.b64decode(RFC_CLIENT_PROOF),
                                             client_signature))
    assert hashlib.sha256(client_key).digest() == stored_key
    assert base64.b64encode(hmac.new(server_key, RFC_AUTH_MESSAGE, hashlib.sha256)
                            .digest()).decode() == RFC_SERVER_SIGNATURE


def test_the_salt_is_derived_so_a_redeploy_sends_the_same_verifier():
    password = "Abcdefghijklmnopqrstuvwxyz012345"
    first = scram_sha256_verifier(password, "django")
    assert first == scram_sha256_verifier(password, "django")
    iterations, salt, _, _ = _parts(first)
    assert (iterations, len(salt), salt) == (4096, 16, derived_salt(password, "django"))
    assert password not in first
    # another role or another password: another salt
    assert _parts(scram_sha256_verifier(password, "shop_app"))[1] != salt
    assert _parts(scram_sha256_verifier(password[:-1] + "6", "django"))[1] != salt


@pytest.mark.parametrize("password", ["", "two\nlines", "caf\u00e9", "tab\there"])
def test_passwords_outside_printable_ascii_are_refused_without_showing_them(password):
    with pytest.raises(ValueError) as error:
        scram_sha256_verifier(password, "django")
    assert password == "" or password not in str(error.value)
