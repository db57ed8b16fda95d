#!/usr/bin/env bash
# Entrypoint of seaworthy-test/nats.
#
# `nats-server` without arguments gets JetStream with its store in /data,
# the client port 4222 and the monitoring port 8222 (`/healthz`); options
# given after the command are passed on (`docker run IMAGE --debug`). The
# server prints "Server is ready" once it accepts clients.
set -Eeuo pipefail

if [[ $# -eq 0 || $1 == -* ]]; then
    set -- nats-server "$@"
fi

if [[ $1 == nats-server ]]; then
    set -- nats-server --jetstream --store_dir /data --port 4222 \
        --http_port 8222 "${@:2}"
    if [[ $(id -u) == 0 ]]; then
        # The store may be a fresh volume owned by root.
        chown -R nobody:nogroup /data
        exec gosu nobody "$@"
    fi
fi

exec "$@"
