"""tests/support/rootfs.py: the suite is part of a base image's recipe."""
from __future__ import annotations

import pytest

from tests.support import rootfs


def test_the_suite_is_part_of_the_recipe_hash():
    bookworm = rootfs._recipe_hash(["nginx"], "", [], "bookworm")
    trixie = rootfs._recipe_hash(["nginx"], "", [], "trixie")
    assert bookworm != trixie
    assert bookworm == rootfs._recipe_hash(["nginx"], "", [], "bookworm")


def test_an_unknown_suite_is_refused():
    assert rootfs.check_suite("trixie") == "trixie"
    with pytest.raises(ValueError, match="unknown Debian suite 'sid': one of bookworm, trixie"):
        rootfs.check_suite("sid")
