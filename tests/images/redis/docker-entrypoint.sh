#!/usr/bin/env bash
# Entrypoint of seaworthy-test/redis.
#
# `redis-server` without a configuration file gets the options that make it
# usable in a container: reachable from other hosts (--protected-mode no
# --bind 0.0.0.0) and in the foreground. Options given after them win, as
# Redis applies the last occurrence. Redis logs to stdout, where it prints
# "Ready to accept connections" once it is.
set -Eeuo pipefail

# `docker run IMAGE --port 7000` and `docker run IMAGE /my/redis.conf`
# mean `redis-server ...`.
if [[ $# -eq 0 || $1 == -* || $1 == *.conf ]]; then
    set -- redis-server "$@"
fi

if [[ $1 == redis-server ]]; then
    # A configuration file, if any, is the first argument after the command;
    # options start with "--". Informational modes such as --version must
    # stay the first argument.
    if [[ $# -lt 2 ]] || [[ $2 == --* && ! $2 =~ ^--(version|help|test-memory|check-system)$ ]]; then
        set -- redis-server --protected-mode no --bind 0.0.0.0 \
            --daemonize no "${@:2}"
    fi
    if [[ $(id -u) == 0 ]]; then
        # The data directory may be a fresh volume owned by root.
        find . \! -user redis -exec chown redis:redis {} +
        exec gosu redis "$@"
    fi
fi

exec "$@"
