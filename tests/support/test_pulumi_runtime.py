"""tests/support/pulumi_runtime.py: the mock-runtime harness of the mock tests and the engine."""
from __future__ import annotations

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime.sync_await import _sync_await

from tests.support.pulumi_runtime import (
    ARCHIVE_SIG, ASSET_SIG, SECRET_SIG, SIG, UNKNOWN, Registration, has_secret, is_secret,
    is_unknown, plain, plain_data, run_under_mocks, secret,
)


class EchoMocks(pulumi_mocks.Mocks):
    def new_resource(self, args):
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args):
        return {}


class Recorder(pulumi_mocks.MockMonitor):
    def __init__(self):
        super().__init__(EchoMocks())
        self.registrations: dict[str, Registration] = {}

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        self.registrations[request.name] = Registration.from_register(request, response.urn)
        return response


def run(program, tmp_path, monitor=None, config=None, **kwargs):
    return run_under_mocks(EchoMocks(), tmp_path, project="proj", stack="dev",
                           config=config or {}, program=program, monitor=monitor, **kwargs)


def test_secret_helpers_on_wire_values():
    value = {"a": [1.0, secret("s")], "b": "x"}
    assert secret("s") == {SIG: SECRET_SIG, "value": "s"}
    assert secret(secret("s")) == secret("s")
    assert is_secret(secret("s")) and not is_secret(value)
    assert has_secret(value) and not has_secret({"a": [1.0]})
    assert plain(value) == {"a": [1.0, "s"], "b": "x"}
    assert is_unknown(secret(UNKNOWN)) and not is_unknown("x")


def test_plain_data_is_what_a_provider_sees():
    assert plain_data(secret({"n": 2.0, "f": 2.5, "t": (1.0,)})) == {"n": 2, "f": 2.5, "t": [1]}
    assert plain_data({SIG: ASSET_SIG, "path": "a.txt"}) == {"asset": "file", "path": "a.txt"}
    assert plain_data({SIG: ASSET_SIG, "text": "hi"}) == {"asset": "string", "text": "hi"}
    assert plain_data({SIG: ARCHIVE_SIG, "path": "d"}) == {"archive": "file", "path": "d"}
    assert plain_data({SIG: ASSET_SIG, "uri": "http://x"}) == {"unsupported": "RemoteAsset"}
    assert plain_data({SIG: ARCHIVE_SIG, "assets": {}}) == {"unsupported": "AssetArchive"}


def test_registration_keeps_the_request_in_wire_form(tmp_path):
    monitor = Recorder()

    def program():
        parent = pulumi.ComponentResource("test:index:Group", "group")
        first = pulumi.CustomResource("test:index:Thing", "first", {"size": 3})
        pulumi.CustomResource(
            "test:index:Thing", "second",
            {"source": pulumi.StringAsset("hello"), "key": pulumi.Output.secret("k"),
             "size": first.id},
            pulumi.ResourceOptions(parent=parent, depends_on=[first], protect=True,
                                   delete_before_replace=True, ignore_changes=["size"],
                                   additional_secret_outputs=["out"]))

    run(program, tmp_path, monitor=monitor)
    group, first, second = (monitor.registrations[n] for n in ("group", "first", "second"))
    assert not group.custom and second.custom
    assert second.parent == group.urn and second.dependencies == [first.urn]
    assert second.property_dependencies["size"] == [first.urn]
    assert (second.protect, second.delete_before_replace) == (True, True)
    assert second.ignore_changes == ["size"] and second.additional_secret_outputs == ["out"]
    assert second.input("key") == secret("k")
    assert second.input("source") == {SIG: ASSET_SIG, "text": "hello"}
    assert second.plain_input("key") == "k"
    assert second.inputs == {"source": {"asset": "string", "text": "hello"}, "key": "k",
                             "size": "first-id"}
    assert first.input("size") == 3.0 and first.inputs == {"size": 3}


def test_each_run_starts_afresh_with_its_own_config(tmp_path):
    (tmp_path / "__main__.py").write_text(
        "import os, pulumi\n"
        "cfg = pulumi.Config()\n"
        "pulumi.export('greeting', cfg.require('greeting'))\n"
        "pulumi.export('token', cfg.require_secret('token'))\n"
        "pulumi.export('cwd', os.getcwd())\n")
    exports = run(None, tmp_path, config={"proj:greeting": "hi", "proj:token": "t"},
                  secret_keys=["proj:token", "proj:absent"])
    assert exports["greeting"] == "hi" and exports["cwd"] == str(tmp_path.resolve())
    assert _sync_await(exports["token"].is_secret())
    # a second run does not see the first run's exports (the root Stack is new)
    assert run(lambda: pulumi.export("other", 1), tmp_path) == {"other": 1}
