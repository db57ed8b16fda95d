#!/usr/bin/env bash
# Entrypoint of seaworthy-test/mariadb.
#
# Contract (the official mariadb image's, MYSQL_* spellings accepted too):
#   MARIADB_ROOT_PASSWORD               root's password; required unless one
#                                       of the next two is set
#   MARIADB_ALLOW_EMPTY_ROOT_PASSWORD   root without a password
#   MARIADB_RANDOM_ROOT_PASSWORD        a random root password, printed
#   MARIADB_ROOT_HOST                   where root may log in from
#                                       (default '%')
#   MARIADB_DATABASE                    a database created at init
#   MARIADB_USER, MARIADB_PASSWORD      a user created at init, with every
#                                       privilege on MARIADB_DATABASE
#   /docker-entrypoint-initdb.d/*.sql, *.sql.gz, *.sh
#                                       run once, in name order, against
#                                       MARIADB_DATABASE (when set)
#
# Arguments starting with '-' are options of mariadbd. When the data
# directory is empty, it is initialised with a temporary server that does
# not listen on TCP (it prints "ready for connections" with port 0), which
# is stopped before the real server starts; the real one prints
# "mariadbd: ready for connections." with port 3306.
set -Eeuo pipefail

log() {
    printf 'docker-entrypoint.sh: %s\n' "$*"
}

if [[ $# -eq 0 || $1 == -* ]]; then
    set -- mariadbd "$@"
fi
if [[ $1 == mysqld ]]; then
    shift
    set -- mariadbd "$@"
fi

# Anything else (bash, mariadb, ...) runs as given.
if [[ $1 != mariadbd ]]; then
    exec "$@"
fi

# MARIADB_X, else MYSQL_X, else the default.
env_of() {
    local mariadb="MARIADB_$1" mysql="MYSQL_$1"
    printf '%s' "${!mariadb:-${!mysql:-${2:-}}}"
}

DATADIR=/var/lib/mysql
SOCKET=/run/mysqld/mysqld.sock

# As root: prepare the directories (a fresh volume may be owned by root),
# then come back as the mysql user.
if [[ $(id -u) == 0 ]]; then
    mkdir -p "$DATADIR" /run/mysqld
    find "$DATADIR" /run/mysqld \! -user mysql -exec chown mysql:mysql {} +
    exec gosu mysql "${BASH_SOURCE[0]}" "$@"
fi

# The server's options from the command line, for the temporary server.
shift
SERVER_OPTIONS=("$@")

# A SQL string literal.
sql_literal() {
    local s=${1//\\/\\\\}
    printf "'%s'" "${s//\'/\'\'}"
}

# A SQL identifier.
sql_ident() {
    printf '`%s`' "${1//\`/\`\`}"
}

run_sql() {
    mariadb --protocol=socket --socket="$SOCKET" -uroot --password="$ROOT_PASSWORD_NOW" \
        --batch --skip-column-names "$@"
}

run_init_scripts() {
    local file database
    database=$(env_of DATABASE)
    local -a target=()
    if [[ -n $database ]]; then
        target=(--database="$database")
    fi
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
            run_sql "${target[@]}" <"$file"
            ;;
        *.sql.gz)
            log "running $file"
            gunzip --stdout "$file" | run_sql "${target[@]}"
            ;;
        *)
            log "ignoring $file"
            ;;
        esac
    done
    shopt -u nullglob
}

initialise() {
    local root_password root_host database user password allow_empty random
    root_password=$(env_of ROOT_PASSWORD)
    root_host=$(env_of ROOT_HOST '%')
    database=$(env_of DATABASE)
    user=$(env_of USER)
    password=$(env_of PASSWORD)
    allow_empty=$(env_of ALLOW_EMPTY_ROOT_PASSWORD)
    random=$(env_of RANDOM_ROOT_PASSWORD)

    if [[ -z $root_password && -z $allow_empty && -z $random ]]; then
        cat >&2 <<'MSG'
Error: the database is not initialised and no root password is set.
       Set MARIADB_ROOT_PASSWORD to a non-empty value, for example
       "docker run -e MARIADB_ROOT_PASSWORD=secret ...", or one of
       MARIADB_ALLOW_EMPTY_ROOT_PASSWORD and MARIADB_RANDOM_ROOT_PASSWORD.
MSG
        exit 1
    fi
    if [[ -n $random ]]; then
        root_password=$(head -c 24 /dev/urandom | base64 | tr -d '/+=' | head -c 32)
        log "GENERATED ROOT PASSWORD: $root_password"
    fi
    if [[ -n $user && $user == root ]]; then
        echo >&2 "Error: MARIADB_USER=root: the root user is created already; set MARIADB_ROOT_PASSWORD instead"
        exit 1
    fi
    if [[ -n $user && -z $password ]]; then
        echo >&2 "Error: MARIADB_USER is set without MARIADB_PASSWORD"
        exit 1
    fi

    log "initialising the data directory"
    mariadb-install-db --datadir="$DATADIR" --rpm --skip-test-db \
        --auth-root-authentication-method=normal --skip-log-bin \
        --loose-innodb_buffer_pool_load_at_startup=0 \
        --loose-innodb_buffer_pool_dump_at_shutdown=0 \
        "${SERVER_OPTIONS[@]}" >/dev/null

    log "starting a temporary server (socket only)"
    mariadbd --skip-networking --socket="$SOCKET" --skip-log-bin \
        --loose-innodb_buffer_pool_load_at_startup=0 \
        --loose-innodb_buffer_pool_dump_at_shutdown=0 \
        "${SERVER_OPTIONS[@]}" &
    local pid=$!
    ROOT_PASSWORD_NOW=
    local i
    for i in $(seq 300); do
        if mariadb-admin --socket="$SOCKET" -uroot --silent ping >/dev/null 2>&1; then
            break
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo >&2 "Error: the temporary server exited during initialisation"
            exit 1
        fi
        sleep 0.1
    done

    {
        echo "SET @@SESSION.SQL_LOG_BIN=0;"
        # Only root, with the password given, from the host given.
        echo "DELETE FROM mysql.global_priv WHERE user NOT IN ('mysql.sys', 'mariadb.sys', 'root') OR host NOT IN ('localhost');"
        echo "FLUSH PRIVILEGES;"
        echo "SET PASSWORD FOR 'root'@'localhost' = PASSWORD($(sql_literal "$root_password"));"
        if [[ $root_host != localhost ]]; then
            echo "CREATE USER 'root'@$(sql_literal "$root_host") IDENTIFIED BY $(sql_literal "$root_password");"
            echo "GRANT ALL ON *.* TO 'root'@$(sql_literal "$root_host") WITH GRANT OPTION;"
            echo "GRANT PROXY ON ''@'%' TO 'root'@$(sql_literal "$root_host") WITH GRANT OPTION;"
        fi
        if [[ -n $database ]]; then
            echo "CREATE DATABASE IF NOT EXISTS $(sql_ident "$database");"
        fi
        if [[ -n $user ]]; then
            echo "CREATE USER $(sql_literal "$user")@'%' IDENTIFIED BY $(sql_literal "$password");"
            if [[ -n $database ]]; then
                echo "GRANT ALL ON $(sql_ident "$database").* TO $(sql_literal "$user")@'%';"
            fi
        fi
        echo "FLUSH PRIVILEGES;"
    } | run_sql
    ROOT_PASSWORD_NOW=$root_password
    # Init scripts that run the client themselves log in as root.
    export MYSQL_PWD=$root_password

    run_init_scripts
    unset MYSQL_PWD

    log "stopping the temporary server"
    kill "$pid"
    wait "$pid" || true
    log "MariaDB init process done. Ready for start up."
}

if [[ ! -d $DATADIR/mysql ]]; then
    initialise
else
    log "the data directory contains a database already; skipping initialisation"
fi

exec mariadbd "${SERVER_OPTIONS[@]}"
