#!/usr/bin/env bash
# Entrypoint of seaworthy-test/rabbitmq.
#
# Writes the default user from RABBITMQ_DEFAULT_USER / RABBITMQ_DEFAULT_PASS
# (guest / guest) into the configuration, then runs the broker in the
# foreground as the rabbitmq user. The user is only created when the node
# starts with an empty database, as with the official image.
#
# Readiness: the line meaning "ready" is
#     ... [info] <0.665.0> Server startup complete; 3 plugins started.
# logged once the AMQP (5672) and management (15672) listeners are up, about
# 6 s after the start. The banner's "Starting broker... completed with 3
# plugins." is printed right before it, but not as one line: log lines come
# between "Starting broker..." and " completed with 3 plugins.".
set -Eeuo pipefail

if [[ $# -eq 0 || $1 == -* ]]; then
    set -- rabbitmq-server "$@"
fi

if [[ $1 == rabbitmq-server ]]; then
    # Makes RabbitMQ's start script exec the Erlang VM instead of running it
    # as a child: the VM then gets `docker stop`'s SIGTERM itself (and shuts
    # down cleanly), and the container's exit status is the VM's (non-zero
    # when the broker fails to boot).
    export RUNNING_UNDER_SYSTEMD=true
    if [[ $(id -u) == 0 ]]; then
        mkdir -p /etc/rabbitmq/conf.d
        {
            echo "# Written by docker-entrypoint.sh from the environment."
            echo "default_user = ${RABBITMQ_DEFAULT_USER:-guest}"
            echo "default_pass = ${RABBITMQ_DEFAULT_PASS:-guest}"
        } >/etc/rabbitmq/conf.d/10-default-user.conf
        # The data directory may be a fresh volume owned by root.
        find /var/lib/rabbitmq \! -user rabbitmq -exec chown rabbitmq:rabbitmq {} +
        # Debian's /usr/sbin/rabbitmq-server wrapper would send the output
        # to files; run the real script.
        shift
        exec gosu rabbitmq /usr/lib/rabbitmq/bin/rabbitmq-server "$@"
    fi
    shift
    exec /usr/lib/rabbitmq/bin/rabbitmq-server "$@"
fi

exec "$@"
