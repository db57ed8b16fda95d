#!/usr/bin/env bash
# Entrypoint of seaworthy-test/postgres.
#
# Contract (the same as the official postgres image's):
#   POSTGRES_PASSWORD          superuser password; required unless
#                              POSTGRES_HOST_AUTH_METHOD=trust
#   POSTGRES_USER              superuser name (default: postgres)
#   POSTGRES_DB                database created at init (default: the user)
#   POSTGRES_INITDB_ARGS       extra arguments for initdb (split on spaces)
#   POSTGRES_HOST_AUTH_METHOD  pg_hba method for TCP clients
#                              (default: scram-sha-256)
#   /docker-entrypoint-initdb.d/*.sql, *.sql.gz, *.sh
#                              run once, in name order, at initialisation
#
# When $PGDATA is empty, the database is initialised with a temporary server
# listening on the Unix socket only, then that server is stopped and the real
# one started in the foreground. Both print "database system is ready to
# accept connections", so the line appears twice on a first start.
set -Eeuo pipefail

log() {
    printf 'docker-entrypoint.sh: %s\n' "$*"
}

# `docker run IMAGE -c fsync=off` means `postgres -c fsync=off`.
if [[ $# -eq 0 || $1 == -* ]]; then
    set -- postgres "$@"
fi

# Anything else (bash, psql, ...) runs as given.
if [[ $1 != postgres ]]; then
    exec "$@"
fi

export PGDATA=${PGDATA:-/var/lib/postgresql/data}

# As root: prepare the directories (a fresh volume may be owned by root),
# then come back as the postgres user.
if [[ $(id -u) == 0 ]]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    find "$PGDATA" /var/run/postgresql \! -user postgres -exec chown postgres:postgres {} +
    chmod 0700 "$PGDATA"
    chmod 2775 /var/run/postgresql
    exec gosu postgres "${BASH_SOURCE[0]}" "$@"
fi

# Runs a psql script read from stdin or from the given arguments, stopping
# at the first error.
run_psql() {
    psql --no-psqlrc --set ON_ERROR_STOP=1 --no-password \
        --username "$POSTGRES_USER" "$@"
}

# Runs the scripts of /docker-entrypoint-initdb.d against $POSTGRES_DB.
run_init_scripts() {
    local file
    shopt -s nullglob
    for file in /docker-entrypoint-initdb.d/*; do
        case $file in
        *.sh)
            if [[ -x $file ]]; then
                log "running $file"
                "$file"
            else
                log "sourcing $file"
                # shellcheck disable=SC1090
                . "$file"
            fi
            ;;
        *.sql)
            log "running $file"
            run_psql --dbname "$POSTGRES_DB" --file "$file"
            ;;
        *.sql.gz)
            log "running $file"
            gunzip --stdout "$file" | run_psql --dbname "$POSTGRES_DB"
            ;;
        *)
            log "ignoring $file"
            ;;
        esac
    done
    shopt -u nullglob
}

# Creates the cluster, the user's database and runs the init scripts.
initialise() {
    local auth=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
    local -a initdb_args=()

    if [[ -z ${POSTGRES_PASSWORD:-} && $auth != trust ]]; then
        cat >&2 <<'MSG'
Error: the database is not initialised and no superuser password is set.
       Set POSTGRES_PASSWORD to a non-empty value, for example
       "docker run -e POSTGRES_PASSWORD=secret ...".

       Alternatively, POSTGRES_HOST_AUTH_METHOD=trust accepts every
       connection without any password. Only ever use that for tests.
MSG
        exit 1
    fi
    if [[ $auth == trust ]]; then
        log "WARNING: POSTGRES_HOST_AUTH_METHOD=trust: every client may connect as any user without a password"
    fi

    # Unquoted on purpose: the variable holds several arguments.
    read -r -a initdb_args <<<"${POSTGRES_INITDB_ARGS:-}"
    if [[ -n ${POSTGRES_PASSWORD:-} ]]; then
        initdb --username="$POSTGRES_USER" \
            --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") "${initdb_args[@]}"
    else
        initdb --username="$POSTGRES_USER" "${initdb_args[@]}"
    fi

    printf "\n# Added by docker-entrypoint.sh\nlisten_addresses = '*'\n" \
        >>"$PGDATA/postgresql.conf"
    printf '\n# Added by docker-entrypoint.sh\nhost all all all %s\n' "$auth" \
        >>"$PGDATA/pg_hba.conf"

    # Init scripts that run psql themselves connect as the superuser.
    export PGUSER=${PGUSER:-$POSTGRES_USER}

    # Temporary server: Unix socket only, so nobody connects before the
    # initialisation is complete.
    pg_ctl --pgdata="$PGDATA" --wait \
        --options="-c listen_addresses='' -p ${PGPORT:-5432}" start

    if [[ $POSTGRES_DB != postgres ]]; then
        log "creating database $POSTGRES_DB"
        run_psql --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
    fi
    run_init_scripts

    pg_ctl --pgdata="$PGDATA" --wait --mode=fast stop
    log "PostgreSQL init process complete; ready for start up."
}

export POSTGRES_USER=${POSTGRES_USER:-postgres}
export POSTGRES_DB=${POSTGRES_DB:-$POSTGRES_USER}

if [[ ! -s $PGDATA/PG_VERSION ]]; then
    initialise
else
    log "PostgreSQL database directory appears to contain a database; skipping initialization"
fi

exec "$@"
