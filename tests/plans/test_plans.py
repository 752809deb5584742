"""components/plans/: each host's plan, as data (no Pulumi)."""
from __future__ import annotations

from pathlib import Path

import pytest

from components.config import MaintenanceConfig
from components.plans import app_server_plan, database_plan, proxy_plan, stack_plans
from components.plans.describe import host_files, inspect_values
from components.plans.items import (File, HashOf, Local, Step, Teardown, Upload, ValueOf,
                                    render_text)
from components.render import (alerts, appenv, backups, certbot, containers, firewall,
                               images, maintenance, nginx, postgres, release, releases,
                               drain, upstream_slots, upstream_watch)
from components.render.app_image import UPLOAD_DIR, app_image_tag, context_name
from tests.render.conftest import make_config, replace

ROOT = Path(__file__).resolve().parents[2]


def names(plan) -> list[str]:
    return [item.name for item in plan.items]


def test_database_plan_admits_own_app_servers_and_allowed_clients():
    base = make_config()
    cfg = make_config(database=replace(base.database, allowed_clients=("10.0.4.41",)))
    clients = ["10.0.0.21", "10.0.0.22", "10.0.4.41"]
    plan = database_plan(cfg)
    assert names(plan)[:7] == ["install", "tls", "postgresql-conf", "pg-hba", "configure",
                               "setup", "firewall"]
    assert plan.item("pg-hba").content == postgres.render_pg_hba(cfg, clients)
    assert plan.item("pg-hba").mode == "0640"
    rules = firewall.database_rules(cfg, clients)
    # clients are added first; those that left lose their access after nginx's switch
    assert plan.item("firewall").script == firewall.render_ufw_script(rules, prune=False)
    assert plan.item("firewall-revoke").script == firewall.render_ufw_script(rules)
    assert plan.item("configure").script == postgres.render_configure_postgres_script(
        cfg, keep_clients=True)
    assert plan.item("pg-hba-revoke").script == postgres.render_configure_postgres_script(cfg)
    assert plan.item("pg-hba-revoke").triggers == (HashOf("pg-hba"),)
    assert names(plan)[-2:] == ["pg-hba-revoke", "firewall-revoke"]
    assert plan.later == "pg-hba-revoke"
    assert plan.item("pg-hba-revoke").after == ("configure", "@switched")
    assert plan.item("firewall-revoke").after == ("firewall", "@switched")
    setup = plan.item("setup")
    assert (setup.secret, setup.triggers, setup.stdin.needs) == (True, (), ("db_password",))
    # its stdin (whose hash re-runs it) is the password's verifier, not the password
    assert render_text(setup.stdin, {"db_password": "pw"}) == \
        postgres.render_db_setup_stdin(cfg, "pw")
    assert "pw" not in render_text(setup.stdin, {"db_password": "pw"}).split("$", 1)[1]
    assert plan.item("configure").triggers == (HashOf("postgresql-conf"), HashOf("pg-hba"))
    assert plan.item("configure").after == ("tls", "postgresql-conf", "pg-hba")


def test_the_database_certificate_is_made_on_its_host_and_reaches_every_app_server(cfg):
    db = database_plan(cfg)
    tls = db.item("tls")
    assert (tls.provides, tls.secret, tls.stdin) == ("db_ca_cert", False, None)
    assert tls.script == postgres.render_db_tls_script(cfg)
    assert "ssl = on\n" in db.item("postgresql-conf").content
    cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"
    for index, host in enumerate(cfg.app_servers):
        plan = app_server_plan(cfg, host, runs_release=index == 0)
        ca = plan.item("db-ca-file")
        assert (ca.path, ca.mode, ca.owner, ca.secret) == ("/etc/djscale/db-ca.pem", "0644",
                                                           "root:root", False)
        assert render_text(ca.content, {"db_ca_cert": cert}) == cert + "\n"
        container = plan.item("start")
        assert "db-ca-file" in container.after
        assert container.triggers == (HashOf("env-file"), HashOf("db-ca-file"))
        script = render_text(container.script, {"app_image": "sha256:feed"})
        assert "--volume /etc/djscale/db-ca.pem:/etc/djscale/db-ca.pem:ro" in script
        assert "cat -- /etc/djscale/app.env /etc/djscale/db-ca.pem | sha256sum" in script
        assert "/etc/djscale/db-ca.pem" in plan.item("teardown").script
    release = app_server_plan(cfg, cfg.app_servers[0], runs_release=True).item("release")
    assert "db-ca-file" in release.after
    assert "--volume /etc/djscale/db-ca.pem:/etc/djscale/db-ca.pem:ro" in render_text(
        release.script, {"app_image": "sha256:feed"})


DRAIN = ("drain-script", "drain-service", "drain-enable")


def test_every_app_server_drains_before_docker_stops(cfg):
    """The drain unit and script, installed after the firewall (DOCKER-USER is there), and
    the step that enables and starts it, re-run when either changes, undone when the
    server leaves."""
    plan = app_server_plan(cfg, cfg.app_servers[1], runs_release=False)
    script, service, enable = (plan.item(n) for n in DRAIN)
    assert (script.path, script.mode, script.content) == (
        drain.DRAIN_SCRIPT_PATH, "0755",
        drain.render_drain_script((cfg.app.port, cfg.app.port + 1), "djscale-app",
                                  cfg.app.container_port))
    assert (service.path, service.content) == (drain.DRAIN_SERVICE_PATH,
                                               drain.render_drain_service())
    assert script.after == service.after == ("firewall",)
    assert enable.after == ("drain-script", "drain-service")
    assert enable.triggers == (HashOf("drain-script"), HashOf("drain-service"))
    assert enable.undo == drain.render_disable_drain_script()


def test_first_app_server_alone_runs_the_release_with_the_image_it_builds(cfg):
    first = app_server_plan(cfg, cfg.app_servers[0], runs_release=True)
    other = app_server_plan(cfg, cfg.app_servers[1], runs_release=False)
    assert names(first) == ["install-docker", "firewall", *DRAIN, "upload-context", "image",
                            "env-file", "db-ca-file", "release", "start", "retire",
                            "prune-images", "teardown"]
    assert names(other) == ["install-docker", "firewall", *DRAIN, "image", "env-file",
                            "db-ca-file", "start", "retire", "prune-images", "teardown"]
    assert isinstance(other.item("image"), Local)  # shipped: one build per release
    assert other.item("image").after == ("install-docker", "@image")
    assert first.later == other.later == "retire"  # from there on: after nginx switched
    step = first.item("release")
    assert step.triggers == (ValueOf("app_image"),)  # and its stdin's hash (components/apply)
    assert render_text(step.script, {"app_image": "sha256:feed"}) == \
        release.render_release_script("sha256:feed")
    # the release's environment, superuser included, is its stdin (secret), never a file
    values = {**inspect_values(cfg), "superuser_password": "<pw>"}
    assert step.secret and render_text(step.stdin, values) == appenv.render_app_env(
        cfg, **{k: values[k] for k in ("db_host", "db_port", "db_name", "db_user",
                                       "db_password", "secret_key", "s3_secret_key",
                                       "app_secrets")},
        superuser_password="<pw>")
    assert not any(isinstance(i, File) and "release" in i.path for i in first.items)
    assert first.item("start").after == ("env-file", "db-ca-file", "firewall", "image",
                                         "release", "@batch")
    assert other.item("start").after == ("env-file", "db-ca-file", "firewall", "image",
                                         "@release", "@batch")
    assert first.item("retire").after == ("start", "@switched")
    assert first.needs() - other.needs() == {"superuser_password"}


def test_the_image_is_built_from_the_upload_for_the_configured_platform(cfg):
    plan = app_server_plan(replace(cfg, images=replace(cfg.images, platform="linux/arm64")),
                           cfg.app_servers[0], runs_release=True)
    upload, image = plan.item("upload-context"), plan.item("image")
    assert isinstance(upload, Upload)
    bundled = ROOT / "assets" / "app"
    assert (upload.remote_dir, upload.dir_name) == (UPLOAD_DIR, context_name(bundled))
    assert upload.local_dir == str(bundled)
    assert "manage.py" in upload.files and "Dockerfile" in upload.files
    assert image.provides == "app_image" and image.after == ("upload-context",)
    assert f"platform=linux/arm64\nexpected_machine=aarch64\n" in image.script
    assert f"tag={app_image_tag(bundled)}\n" in image.script
    assert f"context={UPLOAD_DIR}/{context_name(bundled)}\n" in image.script
    assert "dockerfile=Dockerfile\n" in image.script


def test_the_image_comes_from_app_source_and_app_dockerfile(cfg, tmp_path):
    """A project elsewhere, its Dockerfile in a subdirectory with its own ignore file: the
    upload holds what BuildKit would send from there, and the build names that Dockerfile."""
    project = tmp_path / "shop"
    (project / "docker").mkdir(parents=True)
    (project / "manage.py").write_text("")
    (project / "notes.txt").write_text("")
    (project / ".dockerignore").write_text("manage.py\n")  # not the one BuildKit reads
    (project / "docker" / "prod.Dockerfile").write_text("FROM base\n")
    (project / "docker" / "prod.Dockerfile.dockerignore").write_text("notes.txt\n")
    app = replace(cfg.app, source=str(project), dockerfile="docker/prod.Dockerfile")
    plan = app_server_plan(replace(cfg, app=app), cfg.app_servers[0], runs_release=True)
    upload, image = plan.item("upload-context"), plan.item("image")
    assert upload.local_dir == str(project)
    assert upload.files == (".dockerignore", "docker/prod.Dockerfile",
                            "docker/prod.Dockerfile.dockerignore", "manage.py")
    assert upload.dir_name == context_name(project, "docker/prod.Dockerfile")
    assert "dockerfile=docker/prod.Dockerfile\n" in image.script
    assert '--file "$context/$dockerfile" "$context"' in image.script


@pytest.mark.parametrize("pin", ["previous", "sha256:" + "ab" * 32])
def test_a_pinned_release_is_named_not_built_and_migrates_nothing(cfg, pin):
    pinned = replace(cfg, app=replace(cfg.app, release=pin))
    first = app_server_plan(pinned, cfg.app_servers[0], runs_release=True)
    other = app_server_plan(pinned, cfg.app_servers[1], runs_release=False)
    assert names(first) == ["install-docker", "firewall", *DRAIN, "image", "env-file", "db-ca-file",
                            "release", "start", "retire", "prune-images", "teardown"]
    image = first.item("image")
    assert (image.provides, image.after) == ("app_image", ("install-docker",))
    assert image.script == releases.render_resolve_release_script(pin)
    # the others get it shipped, as any release
    shipped = app_server_plan(cfg, cfg.app_servers[1], runs_release=False).item("image")
    values = {"app_image": "sha256:feed", "ssh_key": "<key>"}
    assert (other.item("image").after, render_text(other.item("image").stdin, values)) == (
        shipped.after, render_text(shipped.stdin, values))
    step = first.item("release")
    script = render_text(step.script, {"app_image": "sha256:feed"})
    assert script == release.render_release_script("sha256:feed",
                                                   steps=release.PINNED_RELEASE_STEPS)
    assert "migrate --check" in script and "collectstatic --noinput" in script
    assert "migrate --noinput" not in script and "createsuperuser" not in script
    assert step.triggers == (ValueOf("app_image"),) and step.secret
    origin = "previous" if pin == "previous" else "pinned"
    for plan in (first, other):
        retire = render_text(plan.item("retire").script, {"slot_port": 8001})
        assert f"\norigin={origin}\n" in retire
        assert "\nreleases_file=/var/lib/djscale/releases\n" in retire
        # the same start, switch and drain as any release
        for name in ("start", "retire", "prune-images"):
            unpinned = app_server_plan(cfg, plan_host(cfg, plan), runs_release=plan is first)
            assert plan.item(name).after == unpinned.item(name).after
    assert "origin=current\n" in render_text(
        app_server_plan(cfg, cfg.app_servers[0], runs_release=True).item("retire").script,
        {"slot_port": 8000})


def plan_host(cfg, plan):
    return next(host for host in cfg.app_servers if host.name == plan.host)


def test_the_release_starts_in_the_free_slot_reading_its_secrets_from_the_env_file(cfg):
    plan = app_server_plan(cfg, cfg.app_servers[1], runs_release=False)
    start = plan.item("start")
    assert start.provides == "slot_port"
    script = render_text(start.script, {"app_image": "sha256:feed"})
    assert "env_file=/etc/djscale/app.env\n" in script
    assert "image=sha256:feed\n" in script
    assert "address=10.0.0.22\ncontainer_port=8000\nport_a=8000\nport_b=8001\n" in script
    retire = render_text(plan.item("retire").script, {"slot_port": "8001"})
    assert "active_port=8001\n" in retire
    assert plan.item("env-file").secret and plan.item("env-file").mode == "0600"
    teardown = plan.item("teardown")
    assert isinstance(teardown, Teardown)
    assert "rm -rf -- /etc/djscale/app.env" in teardown.script


def test_every_app_server_prunes_old_images_last(cfg):
    for index, host in enumerate(cfg.app_servers):
        plan = app_server_plan(cfg, host, runs_release=index == 0)
        prune = plan.item("prune-images")
        assert names(plan)[-2:] == ["prune-images", "teardown"] and prune.after == ("retire",)
        assert render_text(prune.script, {"app_image": "sha256:feed"}) == \
            images.render_prune_app_images_script("sha256:feed")


def test_proxy_stages_and_activates_each_nginx_conf(cfg):
    plan = proxy_plan(cfg)
    http, tls = plan.item("nginx-http-conf"), plan.item("nginx-tls-conf")
    for item in (http, tls):
        assert isinstance(item, File)
        assert (item.path, item.installs_as) == (nginx.NGINX_STAGED_CONF_PATH,
                                                 nginx.NGINX_CONF_PATH)
        assert "@app-starts" in item.after
    assert http.activate == nginx.render_activate_nginx_conf_script(
        unless_exists="/etc/letsencrypt/live/shop.example.com/fullchain.pem")
    assert tls.activate == nginx.render_activate_nginx_conf_script()
    assert tls.triggers == (HashOf("nginx-http-conf"), HashOf("certbot"))
    assert plan.item("renew-enable").undo is not None


def test_proxy_changes_the_certificates_names_after_the_tls_config_is_live():
    cfg = make_config(domain_aliases=("shop.example.net",))
    plan = proxy_plan(cfg)
    names = plan.item("certbot-names")
    assert names.after == ("nginx-tls-conf",)
    assert names.script == certbot.render_certbot_names_script(
        cfg, certbot_image=cfg.images.certbot)
    assert "names=(-d shop.example.com -d shop.example.net)" in names.script
    assert [item.name for item in plan.items].index("certbot-names") > \
        [item.name for item in plan.items].index("nginx-tls-conf")


def test_proxy_alerts_on_failed_renewals_and_certificates_close_to_their_end():
    cfg = make_config(acme=replace(make_config().acme, expiry_warning_days=9))
    plan = proxy_plan(cfg)
    files = ["renew-script", "renew-service", "renew-timer", "alert-script", "alert-unit",
             "expiry-script", "expiry-service", "expiry-timer",
             "status-command"]
    end = names(plan).index("teardown") + 1
    assert names(plan)[end - len(files) - 2:end] == [*files, "renew-enable", "teardown"]
    expected = {
        "alert-script": (alerts.ALERT_SCRIPT_PATH, "0755", alerts.render_alert_script()),
        "alert-unit": (alerts.ALERT_UNIT_PATH, "0644", alerts.render_alert_unit()),
        "expiry-script": ("/usr/local/sbin/djscale-certificate-check", "0755",
                                certbot.render_certificate_check_script(cfg)),
        "expiry-service": ("/etc/systemd/system/djscale-certificate-check.service",
                                 "0644", certbot.render_certificate_check_service()),
        "expiry-timer": ("/etc/systemd/system/djscale-certificate-check.timer", "0644",
                               certbot.render_certificate_check_timer()),
        "status-command": ("/usr/local/sbin/djscale-certificate-status", "0755",
                               certbot.render_certificate_status_script()),
    }
    for name, (path, mode, content) in expected.items():
        item = plan.item(name)
        assert isinstance(item, File) and not item.secret, name
        assert (item.path, item.mode, item.owner, item.content) == (path, mode, "root:root",
                                                                   content), name
    assert "\nwarning_days=9\n" in plan.item("expiry-script").content
    for service in ("renew-service", "expiry-service"):
        assert "\nOnFailure=djscale-alert@%n.service\n" in plan.item(service).content
    # one step enables both timers once every file is in place, and any change re-runs it
    enable = plan.item("renew-enable")
    assert enable.after == ("nginx-tls-conf", *files)
    assert enable.triggers == tuple(HashOf(name) for name in files)
    assert enable.script == certbot.render_enable_renewal_script()
    assert enable.undo == certbot.render_disable_renewal_script()
    for timer in ("djscale-certbot-renew.timer", "djscale-certificate-check.timer"):
        assert f"systemctl enable --now {timer}\n" in enable.script
        assert f"systemctl disable --now {timer} || true\n" in enable.undo


BACKUP_FILES = ["alert-script", "alert-unit", "s3-tool", "backup-credentials", "backup-script",
                "backup-service", "backup-timer", "backup-now-command", "restore-command"]


def test_the_database_is_backed_up_by_a_timer_that_alerts_on_failure():
    cfg = make_config()
    plan = database_plan(cfg)
    assert names(plan)[7:] == ["backup-tools", *BACKUP_FILES, "backup-enable",
                               "backup-teardown", "pg-hba-revoke", "firewall-revoke"]
    expected = {
        "alert-script": (alerts.ALERT_SCRIPT_PATH, "0755", alerts.render_alert_script()),
        "alert-unit": (alerts.ALERT_UNIT_PATH, "0644", alerts.render_alert_unit()),
        "s3-tool": ("/usr/local/lib/djscale/djscale-s3", "0755", backups.render_s3_tool()),
        "backup-script": ("/usr/local/sbin/djscale-backup", "0755",
                          backups.render_backup_script(cfg)),
        "backup-service": ("/etc/systemd/system/djscale-backup.service", "0644",
                           backups.render_backup_service()),
        "backup-timer": ("/etc/systemd/system/djscale-backup.timer", "0644",
                         backups.render_backup_timer(cfg)),
        "backup-now-command": ("/usr/local/sbin/djscale-backup-now", "0755",
                               backups.render_backup_now_script()),
        "restore-command": ("/usr/local/sbin/djscale-restore", "0755",
                            backups.render_restore_script(cfg)),
    }
    for name, (path, mode, content) in expected.items():
        item = plan.item(name)
        assert isinstance(item, File) and not item.secret, name
        assert (item.path, item.mode, item.content) == (path, mode, content), name
    # the storage's secret key: a root-only file, rendered from the secret deploy value
    creds = plan.item("backup-credentials")
    assert (creds.path, creds.mode, creds.owner, creds.secret) == (
        "/etc/djscale/backup/s3-credentials.json", "0600", "root:root", True)
    assert render_text(creds.content, {"backup_s3_secret_key": "S3cret"}) == \
        backups.render_credentials(cfg, "S3cret")
    assert "\nOnFailure=djscale-alert@%n.service\n" in plan.item("backup-service").content
    assert "\nPersistent=true\n" in plan.item("backup-timer").content
    enable = plan.item("backup-enable")
    assert enable.after == tuple(BACKUP_FILES)
    assert enable.triggers == tuple(HashOf(name) for name in BACKUP_FILES)
    assert (enable.script, enable.undo) == (backups.render_enable_backups_script(cfg),
                                            backups.render_disable_backups_script())
    teardown = plan.item("backup-teardown")
    assert isinstance(teardown, Teardown)
    assert teardown.script == backups.render_backup_teardown_script()


def test_encrypted_backups_get_the_passphrase_in_a_root_only_file_and_gpg():
    cfg = make_config()
    cfg = replace(cfg, backups=replace(cfg.backups, encrypt=True))
    plan = database_plan(cfg)
    passphrase = plan.item("backup-passphrase")
    assert (passphrase.path, passphrase.mode, passphrase.secret) == (
        "/etc/djscale/backup/passphrase", "0600", True)
    assert render_text(passphrase.content, {"backup_passphrase": "p" * 20}) == "p" * 20 + "\n"
    assert "backup-passphrase" in plan.item("backup-enable").after
    assert "\npackages=(python3 gpg)\n" in plan.item("backup-tools").script


def test_backups_turned_off_leave_the_database_plan_as_it_was():
    cfg = make_config()
    plan = database_plan(replace(cfg, backups=replace(cfg.backups, enabled=False)))
    assert names(plan) == ["install", "tls", "postgresql-conf", "pg-hba", "configure",
                           "setup", "firewall", "pg-hba-revoke", "firewall-revoke"]


@pytest.mark.parametrize("enabled,action", [(False, "off"), (True, "on")])
def test_proxy_gets_maintenance_mode_before_nginx_serves_the_site(enabled, action):
    cfg = make_config(maintenance=MaintenanceConfig(enabled=enabled))
    plan = proxy_plan(cfg)
    assert names(plan)[:5] == ["install-docker", "firewall", "maintenance-page",
                               "maintenance-command", "maintenance-mode"]
    assert names(plan).index("nginx-http-conf") > 5
    page, command, mode = (plan.item(n) for n in ("maintenance-page", "maintenance-command",
                                                  "maintenance-mode"))
    assert (page.path, page.mode, page.content) == (
        "/etc/djscale/nginx/maintenance/index.html", "0644",
        maintenance.render_maintenance_page(cfg))
    assert (command.path, command.mode, command.content) == (
        "/usr/local/sbin/djscale-maintenance", "0755",
        maintenance.render_maintenance_command())
    # the deploy applies the config value only when it changes (the script is the trigger):
    # a switch made with the command in between stays; no undo, which would switch it
    # off on a replacement
    assert isinstance(mode, Step) and mode.after == ("maintenance-command",)
    assert mode.script == maintenance.render_maintenance_mode_script(cfg)
    assert mode.script.endswith(f"djscale-maintenance {action}\n")
    assert mode.undo is None and mode.triggers == ()


@pytest.mark.parametrize("app_count", [1, 2, 5])
def test_every_after_and_trigger_names_an_earlier_item_or_a_peer(app_count):
    cfg = make_config(app_count=app_count)
    for plan in stack_plans(cfg):
        seen: set[str] = set()
        provided = set()
        for item in plan.items:
            for name in item.after:
                assert name.startswith("@") or name in seen, (plan.host, item.name, name)
            for trigger in getattr(item, "triggers", ()):
                assert trigger.name in seen or trigger.name in provided or \
                    trigger.name in inspect_values(cfg), (plan.host, item.name, trigger)
            seen.add(item.name)
            provided.add(getattr(item, "provides", ""))


def test_inspect_files_are_the_plan_items(cfg):
    plan = proxy_plan(cfg)
    files = {w.path: w for w in host_files(plan, inspect_values(cfg))}
    # the TLS config is the file's final content; the bootstrap one keeps its item name
    values = inspect_values(cfg)
    assert files["etc/djscale/nginx/nginx.conf"].content == render_text(
        plan.item("nginx-tls-conf").content, values)
    assert files["etc/djscale/nginx/nginx.conf.nginx-http-conf"].content == render_text(
        plan.item("nginx-http-conf").content, values)
    steps = {path.split("-", 1)[1]: w for path, w in files.items() if path.startswith("steps/")}
    assert steps["renew-enable.sh"].executable
    assert steps["teardown.sh"].content == containers.render_teardown_script(
        nginx.NGINX_CONTAINER_NAME)
    for name in ("alert-script", "expiry-script", "status-command"):
        item = plan.item(name)
        assert files[item.path.lstrip("/")].content == item.content, name
    assert files["etc/ufw/after.rules"].content == firewall.docker_user_block(
        firewall.proxy_rules(cfg))
    assert isinstance(plan.item("firewall"), Step)


def test_proxy_runs_the_upstream_watcher_after_its_firewall_and_restarts_it_on_change():
    """nginx.hostChecks: python3, the program verbatim, its unit, then the step that restarts
    it whenever either file changes and stops it when the proxy leaves (or the key is off)."""
    plan = proxy_plan(make_config())
    first = names(plan).index("watch-tools")
    assert names(plan)[first:first + 4] == ["watch-tools", "watch-program", "watch-service",
                                            "watch-enable"]
    assert plan.item("watch-tools").after == ("firewall",)  # ufw brought iptables
    program, service = plan.item("watch-program"), plan.item("watch-service")
    assert (program.path, program.mode, program.content) == (
        upstream_watch.WATCH_PROGRAM_PATH, "0755", upstream_watch.render_watch_program())
    assert (service.path, service.content) == (upstream_watch.WATCH_SERVICE_PATH,
                                               upstream_watch.render_watch_service())
    enable = plan.item("watch-enable")
    assert enable.after == ("watch-program", "watch-service")
    assert enable.triggers == (HashOf("watch-program"), HashOf("watch-service"))
    assert enable.undo == upstream_watch.render_disable_watch_script()
    assert "systemctl restart djscale-upstream-watch.service" in enable.script
    off = proxy_plan(make_config(nginx=replace(make_config().nginx, host_checks=False)))
    assert off.item("watch-enable").script == upstream_watch.render_disable_watch_script()


def test_the_release_switch_is_the_map_of_live_slots_not_an_nginx_conf_change():
    """nginx.conf lists each server on app.port whatever its slot; the switch is the map of
    live slots (a start step's port per server), applied without a reload, before either
    nginx.conf; the map's program and unit are installed and enabled before it."""
    cfg = make_config(app_count=2)
    plan = proxy_plan(cfg)
    names_ = names(plan)
    assert names_.index("watch-tools") < names_.index("slots-program") < \
        names_.index("upstream-slots") < names_.index("nginx-http-conf")
    program, service = plan.item("slots-program"), plan.item("slots-service")
    assert (program.path, program.mode, program.content) == (
        upstream_slots.SLOTS_PROGRAM_PATH, "0755", upstream_slots.render_slots_program())
    assert (service.path, service.content) == (upstream_slots.SLOTS_SERVICE_PATH,
                                               upstream_slots.render_slots_service())
    enable = plan.item("slots-enable")
    assert enable.triggers == (HashOf("slots-program"), HashOf("slots-service"))
    assert enable.undo == upstream_slots.render_disable_slots_script()
    switch = plan.item("upstream-slots")
    assert switch.after == ("slots-enable", "firewall", "@app-starts")
    assert (switch.path, switch.installs_as) == (upstream_slots.SLOTS_STAGED_MAP_PATH,
                                                 upstream_slots.SLOTS_MAP_PATH)
    assert "nginx -s reload" not in switch.activate
    assert switch.content.needs == ("port@app1", "port@app2")
    port = cfg.app.port
    routes = switch.content.with_values({"port@app1": str(port + 1), "port@app2": str(port)})
    assert routes.splitlines()[-2:] == [f"10.0.0.21 {port} {port + 1}",
                                        f"10.0.0.22 {port} {port}"]
    for conf in ("nginx-http-conf", "nginx-tls-conf"):
        item = plan.item(conf)
        assert "upstream-slots" in item.after and "@app-starts" in item.after
        assert isinstance(item.content, str)  # no deploy value: a release does not change it
        assert f"server 10.0.0.21:{port} " in item.content
        assert f"server 10.0.0.22:{port} " in item.content
    keepalive = proxy_plan(make_config(nginx=replace(cfg.nginx, upstream_keepalive=8)))
    assert "nginx -s reload" in keepalive.item("upstream-slots").activate
