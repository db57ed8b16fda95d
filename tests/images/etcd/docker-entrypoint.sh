#!/usr/bin/env bash
# Entrypoint of seaworthy-test/etcd.
#
# `etcd` without arguments is a single member with its data in
# /var/lib/etcd, serving clients on every interface at port 2379 (the
# HTTP/JSON gateway answers /v3/... and /health there); options given after
# the command are passed on. etcd logs "ready to serve client requests" once
# it does.
set -Eeuo pipefail

if [[ $# -eq 0 || $1 == -* ]]; then
    set -- etcd "$@"
fi

if [[ $1 == etcd ]]; then
    set -- etcd --name seaworthy --data-dir /var/lib/etcd/seaworthy \
        --listen-client-urls http://0.0.0.0:2379 \
        --advertise-client-urls http://127.0.0.1:2379 \
        --listen-peer-urls http://127.0.0.1:2380 \
        --initial-advertise-peer-urls http://127.0.0.1:2380 \
        --initial-cluster seaworthy=http://127.0.0.1:2380 \
        "${@:2}"
    if [[ $(id -u) == 0 ]]; then
        # The data directory may be a fresh volume owned by root; etcd wants
        # it private.
        mkdir -p /var/lib/etcd/seaworthy
        chown -R nobody:nogroup /var/lib/etcd
        chmod 0700 /var/lib/etcd/seaworthy
        exec gosu nobody "$@"
    fi
fi

exec "$@"
