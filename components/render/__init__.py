"""Every file and script a djscale server receives, rendered by pure functions.

Config dataclasses (components/config/) in, text out; no Pulumi here, so each renderer is
tested against exact text and `python -m components.render` can show a stack's files before
a deploy. Templates live in assets/templates/ (see templating.py for the quoting rule).

    postgres        PostgreSQL packages, TLS certificate, settings drop-in, pg_hba.conf,
                    role and database
    scram           the role's password as PostgreSQL stores it (SCRAM-SHA-256 verifier)
    appenv          the app containers' env file and the database's certificate file
    nginx           nginx.conf of the proxy and the script that activates a new one
    release         migrations, collectstatic and the superuser on the first app server
    firewall        ufw per role and the DOCKER-USER block of /etc/ufw/after.rules
    certbot         certificate issuance, renewal script, systemd units and their enabling
    docker_install  Docker on the app and proxy hosts
    files           commands that install stdin as a file / run a script as root
    app_image       the app image's tag (a hash of its build context) and healthcheck
"""
