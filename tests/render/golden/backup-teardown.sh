#!/usr/bin/env bash
# managed by djscale, do not edit
# Backups left the stack (turned off, or the database host went): the files that hold
# their secrets are deleted. The backups in the bucket stay.
set -euo pipefail
rm -f -- /etc/djscale/backup/s3-credentials.json /etc/djscale/backup/passphrase
