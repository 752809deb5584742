"""Two stacks, one database (issue 8, item 11): the bed's stack ("testbed") keeps the
database, and a second stack of the same project ("front") deploys an app server and a proxy
that use it through `database.stack` (a StackReference the stand-in engine resolves from the
first stack's recorded outputs, as the diy backend of `pulumi login --local` does).

The first stack admits the second's app server through `database.allowedClients`; the second
stack's site then answers through its own proxy, with its own certificate, on the first's
data (a row written through either site is read through the other), its app server verifies
the database with the certificate the first stack exports (`dbCaCert`) and its connections
are TLS, the password stays a secret in the second stack's state, and the one superuser is
the first stack's (its password logs in on the second site). Then the first stack drops
that entry: pg_hba and the database firewall forget the address, a new connection from that
app server gets nowhere, the first site still works, and the second stack's next deploy
stops naming the address before it changes anything. (Connections the server already held
stay open until its app closes them, up to a minute: README, Operations; not waited for.) Last, the second stack is
destroyed (`pulumi destroy`, then `pulumi stack rm`): its app server's host is bare of it, and
the first stack's site and data are untouched.

The second stack's app server is app2's host (test_90 took it out of the first stack; this
proof takes it out too if test_90 has not); its proxy is a host this proof starts (role
`proxy2`), removed at the end and, should the proof stop half-way, by `down` (bed label).
"""
from __future__ import annotations

import concurrent.futures
import re
import uuid

import pytest

from . import acme, engine, hosts, layout
from .bed import remove_host, stack_values
from .deploy import ENGINE_STATE_DIR, deploy_bed
from .engine import base as engine_base, state as engine_state
from .test_60_redeploy import _app_exec
from .test_80_database_tls import _as_postgres, _connect_from

pytestmark = pytest.mark.first_suite  # the program's and the engine's logic (conftest.py)

FRONT = "front"                                   # the second stack
FRONT_DOMAIN = "front.djscale.test"
FRONT_PROXY = "proxy2"                            # its proxy's role on the bed
FRONT_PROXY_ADDRESS = layout.SECOND_PROXY_ADDRESS
DATABASE_STACK = "organization/djscale/testbed"   # the bed's stack, named as on a local backend
HBA = "cat \"$(sudo -u postgres psql -tAc 'show hba_file')\""


def _start_front_proxy(bed) -> str:
    """A bare host for the second stack's proxy, from the image of the bed's other hosts;
    returns its SSH host key."""
    image = bed.engine.docker("inspect", "-f", "{{.Config.Image}}",
                              layout.container_name("db")).stdout.strip()
    hosts.run_host(bed.engine, image, FRONT_PROXY, FRONT_PROXY_ADDRESS)
    public_key = layout.ssh_key_path().with_suffix(".pub").read_text().strip()
    return hosts.prepare_host(bed.engine, FRONT_PROXY, public_key, hosts.machine_nameservers())


def _first_stack(bed, kept: list[str], allowed: list[str]) -> dict:
    """The bed's stack with app servers `kept` (and their pins alone) and `allowed` as its
    database.allowedClients."""
    values = stack_values(bed.state)
    servers = [{"name": app, "address": bed.address(app), "privateAddress": bed.address(app)}
               for app in kept]
    ssh = values["ssh"]
    pinned = {bed.address(role) for role in ("db", "proxy", *kept)}
    ssh["hostKeys"] = {a: k for a, k in ssh["hostKeys"].items() if a in pinned}
    return {"appServers": servers, "ssh": ssh,
            "database": {**values["database"], "allowedClients": allowed}}


def _second_stack(bed, host: str, proxy_key: str) -> dict:
    """What an operator writes for the second stack: the database by reference (no other
    database key, no backups: the first stack backs it up), its own domain and hosts, the
    rest as the bed's stack has it."""
    values = stack_values(bed.state)
    address = bed.address(host)
    return {
        **{key: values[key] for key in ("acme", "images", "app", "staticStorage", "firewall",
                                        "nginx")},
        "domain": FRONT_DOMAIN,
        "ssh": {**values["ssh"], "hostKeys": {address: bed.state.host_keys[address],
                                              FRONT_PROXY_ADDRESS: proxy_key}},
        "database": {"stack": DATABASE_STACK},
        "appServers": [{"name": "front1", "address": address, "privateAddress": address}],
        "proxy": {"address": FRONT_PROXY_ADDRESS, "privateAddress": FRONT_PROXY_ADDRESS},
    }


def _page(bed, path: str, front: bool = False) -> str:
    """A page of the first site, or through the second stack's proxy of its site, verified
    against pebble's root."""
    domain, proxy = (FRONT_DOMAIN, FRONT_PROXY_ADDRESS) if front else (
        layout.DOMAIN, layout.PROXY_ADDRESS)
    out = bed.curl(f"https://{domain}{path}", "-f", host=domain, proxy=proxy)
    assert out.returncode == 0, (domain, path, out.stderr)
    return out.stdout


def _front_login(bed, username: str, password: str) -> str:
    """The admin login form of the second site, as a browser sends it: where it lands."""
    jar, origin = f"/tmp/front-{uuid.uuid4().hex[:8]}.jar", f"https://{FRONT_DOMAIN}"

    def curl(url: str, *args: str):
        return bed.curl(url, *args, host=FRONT_DOMAIN, proxy=FRONT_PROXY_ADDRESS)
    form = curl(f"{origin}/admin/login/", "-f", "-c", jar)
    assert form.returncode == 0, form.stderr
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.stdout)[1]
    return curl(f"{origin}/admin/login/?next=/admin/", "-b", jar, "-c", jar,
                "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}",
                "-H", f"Referer: {origin}/admin/login/", "-H", f"Origin: {origin}",
                "--data-urlencode", f"csrfmiddlewaretoken={token}",
                "--data-urlencode", f"username={username}",
                "--data-urlencode", f"password={password}").stdout


def _new_question(bed, app: str, text: str) -> str:
    pk = _app_exec(bed, app, (
        "from django.utils import timezone; from mydb.models import Question; "
        f"print(Question.objects.create(question_text={text!r}, pub_date=timezone.now()).pk)"))
    assert pk.isdigit(), (app, pk)
    return pk


def _admitted(bed, address: str) -> tuple[bool, bool]:
    """(pg_hba has a line for `address`, the database firewall allows it)."""
    hba = bed.sudo("db", HBA).stdout
    rules = bed.sudo("db", "ufw show added").stdout
    return (f"{address}/32" in hba,
            bool(re.search(rf"allow from {re.escape(address)} to any port 5432", rules)))


def test_a_second_stack_uses_the_first_stacks_database(bed, deployed):
    shared = bed.apps[1]  # app2's host: the second stack's app server
    kept = [app for app in bed.apps if app != shared]
    address = bed.address(shared)
    front_state = engine.state_file(ENGINE_STATE_DIR, FRONT)
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            proxy_key = pool.submit(_start_front_proxy, bed)  # boots while the first deploys
            first = deploy_bed(changes=_first_stack(bed, kept, [address]))
            proxy_key = proxy_key.result()
        assert address in first["dbClientAddresses"]
        assert _admitted(bed, address) == (True, True)
        acme.resolve_name(FRONT_DOMAIN, FRONT_PROXY_ADDRESS)  # pebble validates there

        front = deploy_bed(stack=FRONT, values=_second_stack(bed, shared, proxy_key),
                           secrets={"staticStorageSecretKey": layout.S3_SECRET_KEY})

        # the first stack's outputs, read through the reference
        assert front["url"] == f"https://{FRONT_DOMAIN}/"
        for key in ("dbPrivateAddress", "dbPort", "dbName", "dbUser", "dbPassword", "dbCaCert"):
            assert front[key] == first[key], key
        assert "dbClientAddresses" not in front  # it owns no database
        records = engine_state.load(front_state)
        (ref,) = [r for r in records if r["type"] == "pulumi:pulumi:StackReference"]
        assert ref["inputs"] == {"name": DATABASE_STACK} and ref["external"]
        assert "dbPassword" in ref["outputs"]["secretOutputNames"]
        (root,) = [r for r in records if r["type"] == engine_state.STACK_TYPE]
        assert engine_base.is_secret(root["outputs"]["dbPassword"])  # still a secret here
        assert not engine_base.is_secret(root["outputs"]["dbCaCert"])
        assert not [r for r in records if r["type"] == "djscale:index:DatabaseHost"]

        # the second site, through its own proxy, with its own certificate, on one database
        served = bed.run_in("client", (
            f"openssl s_client -connect {FRONT_PROXY_ADDRESS}:443 -servername {FRONT_DOMAIN} "
            "</dev/null 2>/dev/null | openssl x509 -noout -ext subjectAltName"), timeout=60)
        assert re.findall(r"DNS:([^,\s]+)", served.stdout) == [FRONT_DOMAIN], served.stdout
        text = f"Written through the first stack {uuid.uuid4().hex[:8]}"
        pk = _new_question(bed, kept[0], text)
        assert text in _page(bed, f"/mydb/{pk}/", front=True)
        # one superuser, the first stack's: its password logs in on the second site, the
        # second stack's own (its release found the user and left it) does not
        assert _front_login(bed, first["adminUsername"], first["adminPassword"]) == \
            f"302 https://{FRONT_DOMAIN}/admin/"
        assert _front_login(bed, front["adminUsername"], front["adminPassword"]) == "200 "
        reply = f"Written through the second stack {uuid.uuid4().hex[:8]}"
        reply_pk = _new_question(bed, shared, reply)
        assert reply in _page(bed, f"/mydb/{reply_pk}/")

        # over TLS, verified with the certificate the first stack exports
        ca = bed.sudo(shared, "cat /etc/djscale/db-ca.pem").stdout
        assert ca.strip() == first["dbCaCert"].strip()
        env = bed.sudo(shared, "grep -E '^DATABASE_(HOST|SSLMODE)=' /etc/djscale/app.env")
        assert sorted(env.stdout.split()) == [f"DATABASE_HOST={layout.DB_ADDRESS}",
                                              "DATABASE_SSLMODE=verify-full"]
        for i in range(6):  # every worker of the second site's server gets a request or so
            _page(bed, f"/mydb/?front={i}", front=True)
        rows = _as_postgres(bed, "SELECT s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s "
                                 f"USING (pid) WHERE a.client_addr = '{address}'")
        assert rows and set(rows.split()) == {"t"}, rows
        verified = _connect_from(bed, shared, first["dbPassword"], sslmode="verify-full",
                                 sslrootcert="/etc/djscale/db-ca.pem")
        assert verified.startswith("connected True TLSv1."), verified

        # the first stack drops the entry: its database is closed to that server
        first = deploy_bed(changes=_first_stack(bed, kept, []))
        assert address not in first["dbClientAddresses"]
        assert _admitted(bed, address) == (False, False)
        assert not bed.tcp_open(shared, layout.DB_ADDRESS, 5432)
        refused = _connect_from(bed, shared, first["dbPassword"], sslmode="verify-full",
                                sslrootcert="/etc/djscale/db-ca.pem", connect_timeout=3)
        assert refused.startswith("refused"), refused
        assert reply in _page(bed, f"/mydb/{reply_pk}/")  # the first site is as it was
        for app in kept:
            assert bed.tcp_open(app, layout.DB_ADDRESS, 5432), app
        with pytest.raises(Exception) as stopped:  # and the second stack sees it
            deploy_bed(stack=FRONT, values=_second_stack(bed, shared, proxy_key),
                       secrets={"staticStorageSecretKey": layout.S3_SECRET_KEY})
        assert (f"appServers[0].privateAddress: '{address}' is not admitted by the database "
                f"of {DATABASE_STACK}") in str(stopped.value)

        # pulumi destroy of the second stack, then stack rm: the first is untouched
        engine.destroy(FRONT, ENGINE_STATE_DIR)
        front_state.unlink()
        assert bed.app_container_ids(shared) == []
        assert bed.sudo(shared, "test -e /etc/djscale/app.env", check=False).returncode == 1
        assert text in _page(bed, f"/mydb/{pk}/")
    finally:
        _forget_the_second_stack(bed, front_state)


def _forget_the_second_stack(bed, front_state) -> None:
    """Whatever the proof got to: the second stack destroyed and forgotten, its proxy's
    host gone, its name resolved to the bed's proxy again."""
    if front_state.exists():
        try:
            engine.destroy(FRONT, ENGINE_STATE_DIR)
        finally:
            front_state.unlink()
    remove_host(bed.engine, FRONT_PROXY)
    try:
        acme.forget_name(FRONT_DOMAIN)
    except OSError:
        pass  # the acme service is gone with the bed: nothing to forget
