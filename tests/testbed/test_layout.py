"""tests/testbed/layout.py: which Debian suites the bed runs on (no bed needed)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.testbed import layout


def test_the_session_proves_every_suite_unless_told(monkeypatch):
    monkeypatch.delenv("DJSCALE_TESTBED_SUITES", raising=False)
    assert layout.suites_to_prove() == ["bookworm", "trixie"]
    monkeypatch.setenv("DJSCALE_TESTBED_SUITES", "trixie, bookworm trixie")
    assert layout.suites_to_prove() == ["trixie", "bookworm"]
    monkeypatch.setenv("DJSCALE_TESTBED_SUITES", "bullseye")
    with pytest.raises(ValueError, match="unknown Debian suite 'bullseye'"):
        layout.suites_to_prove()


def test_up_uses_bookworm_unless_told(monkeypatch):
    monkeypatch.delenv("DJSCALE_TESTBED_SUITE", raising=False)
    assert layout.bed_suite() == "bookworm"
    monkeypatch.setenv("DJSCALE_TESTBED_SUITE", "trixie")
    assert layout.bed_suite() == "trixie"


def test_every_suite_has_the_facts_the_proofs_check():
    from tests.support.rootfs import SUITES

    assert set(layout.DEBIAN_RELEASES) == set(layout.POSTGRESQL_MAJORS) == set(SUITES)


def test_the_readme_names_exactly_the_first_suite_proofs():
    """tests/testbed/README.md ("Two suites") lists the proofs the second suite leaves out:
    the modules marked `first_suite`."""
    here = Path(__file__).parent
    marked = {p.stem for p in here.glob("test_*.py")
              if re.search(r"^pytestmark = pytest\.mark\.first_suite\b", p.read_text(), re.M)}
    readme = (here / "README.md").read_text()
    paragraph = readme[readme.index("Proofs marked `first_suite`"):
                       readme.index("checks this list against the marks")]
    named = set(re.findall(r"\btest_\d+(?:_[a-z_]+)?", paragraph))
    modules = {p.stem for p in here.glob("test_*.py")}
    resolved = {n if n in modules else next(m for m in modules if m.startswith(n + "_"))
                for n in named}
    assert resolved == marked
