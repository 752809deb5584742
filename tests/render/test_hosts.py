"""What each host receives (components/render/hosts.py): the list inspect writes."""
from __future__ import annotations

from components.render import firewall, hosts, images, nginx, postgres, release
from tests.render.conftest import make_config, replace


def _by_path(items):
    return {item.path: item for item in items}


def test_database_host_admits_own_app_servers_and_allowed_clients():
    base = make_config()
    cfg = make_config(database=replace(base.database, allowed_clients=("10.0.4.41",)))
    clients = ["10.0.0.21", "10.0.0.22", "10.0.4.41"]
    db = _by_path(hosts.every_host(cfg)["db"])
    assert db[postgres.STAGED_HBA].content == postgres.render_pg_hba(cfg, clients)
    assert "10.0.4.41/32" in db[postgres.STAGED_HBA].content
    assert db["steps/04-firewall.sh"].content == firewall.render_ufw_script(
        firewall.database_rules(cfg, clients))


def test_first_app_server_runs_the_release_with_the_image_of_the_deploy(cfg):
    listed = hosts.every_host(cfg, app_image="sha256:feed")
    app1, app2 = _by_path(listed["app1"]), _by_path(listed["app2"])
    assert app1["steps/03-release.sh"].content == release.render_release_script("sha256:feed")
    assert release.RELEASE_ENV_PATH in app1
    assert not any("release" in path for path in app2)
    placeholder = _by_path(hosts.every_host(cfg)["app1"])["steps/03-release.sh"]
    assert " '<output:app image id>' sh -c " in placeholder.content


def test_every_app_server_prunes_old_images_last_with_the_image_of_the_deploy(cfg):
    listed = hosts.every_host(cfg, app_image="sha256:feed")
    for host, number in (("app1", 4), ("app2", 3)):
        last = listed[host][-1]
        assert last.path == f"steps/{number:02d}-prune-app-images.sh"
        assert last.content == images.render_prune_app_images_script("sha256:feed")


def test_proxy_activates_each_nginx_conf_after_it_is_staged(cfg):
    items = hosts.every_host(cfg)["proxy"]
    paths = [item.path for item in items]
    http_only = paths.index(nginx.NGINX_CONF_PATH + ".http-only")
    tls = paths.index(nginx.NGINX_CONF_PATH)
    assert paths[http_only + 1] == "steps/03-activate-http-only-nginx-conf.sh"
    assert paths[tls + 1] == "steps/05-activate-tls-nginx-conf.sh"
    assert items[http_only + 1].content == nginx.render_activate_nginx_conf_script(
        unless_exists="/etc/letsencrypt/live/shop.example.com/fullchain.pem")
    assert items[tls + 1].content == nginx.render_activate_nginx_conf_script()
    steps = [path for path in paths if path.startswith("steps/")]
    assert steps == sorted(steps)  # numbered in deploy order
