"""components/dockerignore.py: Docker's .dockerignore semantics, checked against a real build.

The unit table says what Docker does (verified by the real-build test below and by the
upstream patternmatcher test tables), including where it differs from Python's fnmatch and
from gitignore.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from components.dockerignore import (DockerIgnore, context_files, context_hash,
                                     parse_dockerignore, read_patterns)


def ignore(*lines: str) -> DockerIgnore:
    return DockerIgnore(parse_dockerignore("\n".join(lines)))


# --- reading the file -----------------------------------------------------------------------

def test_patterns_are_read_as_ignorefile_ReadAll_reads_them():
    text = ("\ufefftest1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n"
            "! /inverted/abs/path\n!\n! \n"  # upstream's table, then ours:
            "  # not a comment: only a line *starting* with # is one\r\n"
            "./x/../y/\n//twice\n\t spaced \x1c\n")
    assert parse_dockerignore(text) == [
        "test1", "test2", "a/file/here", "lastfile", "!inverted/abs/path", "!", "!",
        "# not a comment: only a line *starting* with # is one",
        "y", "twice", "spaced \x1c",  # Go's TrimSpace keeps \x1c, Python's strip() would not
    ]


def test_read_patterns_of_a_context(tmp_path):
    assert read_patterns(tmp_path) == []
    (tmp_path / ".dockerignore").write_bytes(b"# c\r\n*.pyc\r\n!keep.pyc\r\n")
    assert read_patterns(tmp_path) == ["*.pyc", "!keep.pyc"]
    assert DockerIgnore.of_context(tmp_path).excludes("x.pyc")


# --- matching -------------------------------------------------------------------------------

CASES = [
    # plain names are anchored at the context root (gitignore would match at any depth)
    (["foo"], "foo", True),
    (["foo"], "foo/bar/baz", True),  # a directory pattern excludes everything below
    (["foo"], "foobar", False),
    (["foo"], "sub/foo", False),
    # a trailing "/" is cleaned away: it matches a file too (gitignore: directories only)
    (["media/"], "media/upload.png", True),
    (["media/"], "media", True),
    # a leading "/" and "./" are cleaned away
    (["/build"], "build/out.bin", True),
    (["/build"], "src/build/out.bin", False),
    (["./tmp"], "tmp/t", True),
    # "*" and "?" never cross "/" (fnmatch's do): *.pyc is top level only
    (["*.pyc"], "x.pyc", True),
    (["*.pyc"], "pkg/x.pyc", False),
    (["**/*.pyc"], "x.pyc", True),
    (["**/*.pyc"], "pkg/sub/x.pyc", True),
    (["*"], "anything", True),
    (["*"], "dir/file", True),  # via its parent "dir"
    (["*/x"], "a/x", True),
    (["*/x"], "a/b/x", False),
    (["secret?.txt"], "secret1.txt", True),
    (["secret?.txt"], "secret12.txt", False),
    (["secret?.txt"], "secret/.txt", False),
    # "**" is any number of segments, zero included
    (["**/node_modules"], "node_modules/x.js", True),
    (["**/node_modules"], "web/deep/node_modules/y.js", True),
    (["**/node_modules"], "web/my_node_modules", False),
    (["a/**/b"], "a/b", True),
    (["a/**/b"], "a/x/y/b", True),
    (["a/**/b"], "a/x/b/c", True),
    (["a/**/b"], "c/a/b", False),
    (["**"], "any/depth/at/all", True),
    (["cache/**"], "cache", False),  # the directory itself is not matched ...
    (["cache/**"], "cache/sub/c2", True),  # ... everything in it is
    (["**file"], "dir/myfile", True),  # "**" glued to a name: any suffix
    # character classes: "^" negates, "!" is a literal (fnmatch negates with "!")
    (["data/[ab]*.csv"], "data/a1.csv", True),
    (["data/[ab]*.csv"], "data/c1.csv", False),
    (["[0-9]x"], "7x", True),
    (["[^ab]x"], "cx", True),
    (["[^ab]x"], "ax", False),
    (["[!a]x"], "!x", True),
    (["[!a]x"], "bx", False),
    (["[\\]a]"], "]", True),
    (["[[:digit:]]x"], "5x", True),  # RE2's POSIX classes work inside a class
    (["[*]"], "*", False),  # Docker's regexp is ^[[^/]*]$: the class ends at the first "]"
    # "\" escapes; regexp characters are literals
    (["esc\\*star"], "esc*star", True),
    (["esc\\*star"], "escXstar", False),
    (["\\#literal"], "#literal", True),
    (["a+b(c){1}|$.txt"], "a+b(c){1}|$.txt", True),
    (["a+b.txt"], "aab.txt", False),
    (["a\\ b"], "a b", True),
    (["a\\d"], "a1", True),  # an escaped letter is a regexp escape: \d is a digit
    (["a\\d"], "ad", False),
    (["**.pyc"], "pkg/x.pyc", True),  # "**" glued to a name is a suffix match
    (["é*"], "été", True),
    # comments and blank lines
    (["#foo"], "#foo", False),
    ([" #foo"], "#foo", True),
    (["", "   ", "# c", "foo"], "foo", True),
    # "!" exceptions, and the last matching pattern wins
    (["docs", "!docs/keep.md"], "docs/keep.md", False),
    (["docs", "!docs/keep.md"], "docs/other.md", True),
    (["docs", "!docs/keep.md"], "docs/sub/keep.md", True),
    (["!docs/keep.md", "docs"], "docs/keep.md", True),
    (["*.md", "!README.md", "README.md"], "README.md", True),
    (["**", "!util/web"], "util/web/foo", False),
    (["**", "!util/web", "util/web/foo"], "util/web/foo", True),
    (["logs/*.log", "!logs/important.log"], "logs/important.log", False),
    # the tar walk's own rules (go-archive Tarballer.Do), not MatchesOrParentMatches':
    (["a/b", "!a"], "a/b", True),  # "!a" was skipped at "a", so "a/b" alone is tested
    (["skipped", "!**/keep"], "skipped/keep", True),  # no "!" starts with "skipped/": pruned
    (["skipped", "!skipped/keep"], "skipped/keep", False),
    (["lib", "!lib/*/keep.txt"], "lib/x/keep.txt", True),  # "lib/x" is pruned
    # Dockerfile and .dockerignore: COPY sees them unless excluded
    (["Dockerfile"], "Dockerfile", True),
    (["**"], ".dockerignore", True),
    (["*", "!web"], "Dockerfile", True),
    (["**file"], "Dockerfile", False),  # the 20.10 daemon decides: regexp ^(.*/)?file$
    (["**ignore"], ".dockerignore", False),
    (["**file"], "a-file", True),  # the CLI's patternmatcher: a suffix match
    (["Dockerfil+e"], "Dockerfile", True),  # 20.10's regexp: "+" is a repetition there
    ([], "anything", False),
]


@pytest.mark.parametrize("lines,path,excluded", CASES,
                         ids=[f"{'|'.join(c[0])}~{c[1]}" for c in CASES])
def test_excludes(lines, path, excluded):
    assert ignore(*lines).excludes(path) is excluded


def test_paths_are_cleaned_and_must_stay_inside_the_context():
    assert ignore("foo").excludes("./foo/bar")
    assert not ignore("foo").excludes(".")
    with pytest.raises(ValueError, match="inside the build context"):
        ignore("foo").excludes("../foo")


def test_patterns_are_not_rewritten_by_the_matcher_itself():
    # DockerIgnore() is patternmatcher.New: only ReadAll strips a leading "/"
    assert not DockerIgnore(["/x"]).excludes("x")
    assert ignore("/x").excludes("x")


@pytest.mark.parametrize("pattern", ["!", "[", "a[", "[^bc", "[]a]", "[-x]", "[x-]",
                                     "[a-b-c]", "a\\", "[z-a]", "a\\e", "[[:nope:]]"])
def test_patterns_docker_rejects_raise(pattern):
    with pytest.raises(ValueError):
        DockerIgnore([pattern])


# --- the build context ----------------------------------------------------------------------

DOCKERIGNORE = r"""# a comment, then a blank line

 #hash
\#literal
*.pyc
/build/
./tmp
docs
!docs/keep.md
**/node_modules
cache/**
secret?.txt
logs/*.log
!logs/important.log
a/b
!a
skipped
!**/keep
lib
!lib/*/keep.txt
data/[ab]*.csv
esc\*star
Dockerfile
"""

SENT = ["#hash2", "buildx/file", "docs/keep.md", "web/app.js", "secret12.txt",
        "sub/secret1.txt", "sub/deep.pyc", "logs/important.log", "logs/sub/b.log", "a/c",
        "keep", "data/c1.csv", "escXstar", "with space.txt", ".hidden/x", ".dockerignore"]
NOT_SENT = ["#hash", "#literal", "top.pyc", "build/out.bin", "tmp/t", "docs/a.md",
            "docs/sub/b.md", "node_modules/x.js", "web/node_modules/y.js", "cache/c1",
            "cache/sub/c2", "secret1.txt", "logs/a.log", "a/b", "skipped/keep",
            "skipped/other", "lib/keep.txt", "lib/x/keep.txt", "data/a1.csv", "data/b.csv",
            "esc*star", "Dockerfile"]


def tricky_context(root: Path, dockerfile: str = "FROM scratch\n") -> Path:
    """A context whose .dockerignore exercises exceptions, "**", dirs and the walk's rules."""
    root.mkdir(parents=True, exist_ok=True)
    for rel in SENT + NOT_SENT:
        if rel in (".dockerignore", "Dockerfile"):
            continue
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"content of {rel}\n")
    (root / ".dockerignore").write_text(DOCKERIGNORE)
    (root / "Dockerfile").write_text(dockerfile)
    os.symlink("web/app.js", root / "link")  # sent as a link: not a regular file
    os.mkfifo(root / "fifo")
    return root


def test_context_files_of_a_tricky_tree(tmp_path):
    assert context_files(tricky_context(tmp_path / "ctx")) == sorted(SENT)


def test_context_files_agree_with_excludes(tmp_path):
    ctx = tricky_context(tmp_path / "ctx")
    ignored = DockerIgnore.of_context(ctx)
    assert [rel for rel in SENT if ignored.excludes(rel)] == []
    assert [rel for rel in NOT_SENT if not ignored.excludes(rel)] == []


def test_context_hash_follows_what_the_build_copies(tmp_path):
    ctx = tricky_context(tmp_path / "ctx")
    before = context_hash(ctx)
    assert len(before) == 64 and context_hash(ctx) == before
    (ctx / "docs" / "a.md").write_text("excluded: no rebuild")
    (ctx / "top.pyc").write_bytes(b"\0")
    (ctx / "skipped" / "new").write_text("pruned directory")
    assert context_hash(ctx) == before
    (ctx / "docs" / "keep.md").write_text("an exception: rebuild")
    assert context_hash(ctx) != before
    after_edit = context_hash(ctx)
    (ctx / "link").unlink()
    os.symlink("keep", ctx / "link")
    assert context_hash(ctx) != after_edit


def test_context_hash_counts_extra_files(tmp_path):
    ctx = tricky_context(tmp_path / "ctx")
    dockerfile = ctx / "Dockerfile"  # excluded from COPY, but it shapes the image
    with_dockerfile = context_hash(ctx, extra=[dockerfile])
    assert with_dockerfile != context_hash(ctx)
    dockerfile.write_text("FROM scratch\nLABEL x=1\n")
    assert context_hash(ctx, extra=[dockerfile]) != with_dockerfile


# --- a real build ---------------------------------------------------------------------------

# The recipe of tests/testbed/test_engine.py's app image, so its cached rootfs is reused;
# the build only needs find and sort.
BASE_PACKAGES = ["python3"]
IMAGE = "djscale-test/dockerignore:build-test"


@pytest.mark.docker
def test_a_real_build_copies_exactly_the_context_files(docker_engine, tmp_path):
    from tests.support.rootfs import ensure_base_image

    base = ensure_base_image(docker_engine, "djscale-test/dockerignore-base", BASE_PACKAGES)
    dockerfile = (f"FROM {base}\n"
                  "COPY . /ctx\n"
                  "RUN cd /ctx && find . -type f | LC_ALL=C sort > /files"
                  " && find . -type l | LC_ALL=C sort > /links\n")
    ctx = tricky_context(tmp_path / "ctx", dockerfile)
    os.unlink(ctx / "fifo")  # the CLI would send it, but COPY of a fifo is not the point here
    try:
        docker_engine.docker("build", "--force-rm", "-t", IMAGE, str(ctx), timeout=600)
        listed = docker_engine.docker("run", "--rm", IMAGE, "sh", "-c",
                                      "cat /files; echo --; cat /links").stdout
    finally:
        docker_engine.docker("rmi", "-f", IMAGE, check=False)
    files, links = listed.split("--\n")
    assert [line.removeprefix("./") for line in files.splitlines()] == context_files(ctx)
    assert links.splitlines() == ["./link"]
