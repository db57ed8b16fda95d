#!/bin/sh
# mmdebstrap customize hook for seaworthy-test/base; $1 is the root
# filesystem being built. It runs after all packages are installed.
set -eu
root=$1

# Debian's postgresql package creates a "main" cluster at install time. The
# seaworthy-test/postgres image initialises its own in $PGDATA instead.
rm -rf "$root/var/lib/postgresql/15" "$root/etc/postgresql/15"

# mmdebstrap itself removes the apt package lists and caches after this
# hook; drop the remaining backups and the logs of the installation.
rm -f "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old
find "$root/var/log" -type f -exec truncate -s 0 {} +

# Containers get their identity from Docker.
: >"$root/etc/machine-id"
rm -f "$root/etc/hostname"
