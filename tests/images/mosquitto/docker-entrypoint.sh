#!/usr/bin/env bash
# Entrypoint of seaworthy-test/mosquitto.
#
# `docker run IMAGE -v` means `mosquitto -c /etc/mosquitto/seaworthy.conf -v`.
# Mosquitto prints "mosquitto version X running" once its listener is open.
set -Eeuo pipefail

if [[ $# -eq 0 || $1 == -* ]]; then
    set -- mosquitto -c /etc/mosquitto/seaworthy.conf "$@"
fi

if [[ $1 == mosquitto && $(id -u) == 0 ]]; then
    # The persistence directory may be a fresh volume owned by root.
    chown -R mosquitto: /var/lib/mosquitto
fi

exec "$@"
