"""components/check_app/dockerfile.py: the final stage's command, as Docker reads the file,
and gunicorn's arguments, bind and app in it."""
from __future__ import annotations

import pytest

from components.check_app.dockerfile import (Gunicorn, final_container, find_gunicorn,
                                             parse_bind, parse_dockerfile, parse_gunicorn_args)


def container(text: str):
    return final_container(parse_dockerfile(text))


def test_exec_form_continuations_comments_and_heredocs():
    found = container("""\
# syntax=docker/dockerfile:1
ARG PORT=8000
FROM python:3.12-slim AS base
ARG PORT
ENV APP_HOME=/srv \\
    DJANGO_SETTINGS_MODULE=site.settings
WORKDIR $APP_HOME
WORKDIR app
RUN <<EOF
CMD ["not", "this"]
EOF
EXPOSE ${PORT}/tcp
CMD ["gunicorn", \\
     # a comment inside the instruction
     "--bind", "0.0.0.0:8000", "site.wsgi"]
""")
    assert found.argv == ["gunicorn", "--bind", "0.0.0.0:8000", "site.wsgi"]
    assert found.workdir == "/srv/app"
    assert found.env == {"APP_HOME": "/srv", "DJANGO_SETTINGS_MODULE": "site.settings"}
    assert found.expose == (8000,)


def test_a_stage_takes_the_command_of_the_stage_it_is_built_from():
    found = container("""\
FROM python:3.12 AS runtime
ENV PORT=8080
CMD gunicorn site.wsgi
FROM python:3.12 AS builder
RUN pip wheel .
FROM runtime
COPY --from=builder /wheels /wheels
""")
    assert found.argv == ["/bin/sh", "-c", "gunicorn site.wsgi"]
    assert found.env == {"PORT": "8080"}


def test_an_exec_entrypoint_runs_with_cmd_a_shell_one_without():
    assert container('FROM x\nENTRYPOINT ["/start.sh"]\nCMD ["web"]\n').argv == \
        ["/start.sh", "web"]
    assert container('FROM x\nENTRYPOINT /start.sh\nCMD ["web"]\n').argv == \
        ["/bin/sh", "-c", "/start.sh"]
    assert container("FROM x\nRUN true\n").argv is None


@pytest.mark.parametrize("argv, script, expected", [
    (["gunicorn", "-b", ":8000", "a.wsgi"], None, ["-b", ":8000", "a.wsgi"]),
    (["python", "-m", "gunicorn", "a.wsgi"], None, ["a.wsgi"]),
    (["/bin/sh", "-c", "python manage.py check && exec gunicorn --bind 0.0.0.0:$PORT a.wsgi"],
     None, ["--bind", "0.0.0.0:8080", "a.wsgi"]),
    (["/app/start.sh"], "#!/bin/sh\nset -e\n# gunicorn below\nexec gunicorn -c conf.py \"$@\"\n",
     ["-c", "conf.py", "$@"]),
    (["uwsgi", "--http", ":8000"], None, None),
])
def test_gunicorn_is_found_in_the_command(argv, script, expected):
    assert find_gunicorn(argv, lambda path: script if path == "/app/start.sh" else None,
                         {"PORT": "8080"}) == expected


def test_gunicorn_arguments():
    assert parse_gunicorn_args(
        ["--preload", "-w", "3", "--bind=127.0.0.1:9000", "-b", "[::]:8000", "-c",
         "gunicorn.conf.py", "--reload", "site.wsgi:application", "&&", "echo", "x"]) == \
        Gunicorn(("127.0.0.1:9000", "[::]:8000"), "gunicorn.conf.py", "site.wsgi:application")
    assert parse_gunicorn_args(["-c", "conf.py", "$@"]).app is None


@pytest.mark.parametrize("bind, expected", [
    ("0.0.0.0:8000", ("0.0.0.0", 8000)), (":9000", ("", 9000)), ("[::]:8001", ("::", 8001)),
    ("127.0.0.1", ("127.0.0.1", 8000)), ("unix:/run/gunicorn.sock", None),
    ("0.0.0.0:$PORT", None),
])
def test_binds(bind, expected):
    assert parse_bind(bind) == expected
