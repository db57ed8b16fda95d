#!/usr/bin/env bash
# Entrypoint of seaworthy-test/memcached.
#
# memcached prints nothing when it starts (only -vv would, and that logs
# every request), so this script prints "memcached: starting" just before
# replacing itself with the server. The port is accepting connections a few
# milliseconds later.
set -Eeuo pipefail

# `docker run IMAGE -m 128` means `memcached -m 128`.
if [[ $# -eq 0 || $1 == -* ]]; then
    set -- memcached "$@"
fi

if [[ $1 == memcached ]]; then
    echo "memcached: starting"
    if [[ $(id -u) == 0 ]]; then
        exec gosu memcache "$@"
    fi
fi

exec "$@"
