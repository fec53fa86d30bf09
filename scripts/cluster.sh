# Throwaway PostgreSQL clusters, for the test suites (sourced, not run).
#   cluster_start DIR [postgresql.conf lines...]  → sets PGHOST, PGPORT, PGUSER
#   cluster_stop DIR
# The server runs as the system user postgres (initdb refuses root); it listens on a
# Unix socket in DIR and on 127.0.0.1 at a free port.

PG_BIN=${PG_BIN:-$(/usr/lib/postgresql/${PG_MAJOR:-15}/bin/pg_config --bindir)}

as_postgres() {
  if [ "$(id -un)" = postgres ]; then "$@"
  elif [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"
  else sudo -u postgres "$@"
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

cluster_start() {
  local dir=$1; shift
  mkdir -p "$dir"
  chmod 755 "$dir"
  [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
  as_postgres "$PG_BIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log"; return 1; }
  PGPORT=$(free_port)
  {
    echo "port = $PGPORT"
    echo "listen_addresses = '127.0.0.1'"
    echo "unix_socket_directories = '$dir'"
    echo "fsync = off"
    for line in "$@"; do echo "$line"; done
  } | as_postgres tee -a "$dir/data/postgresql.conf" >/dev/null
  # No Rust backtraces in error details: the server runs as it would for a user.
  as_postgres env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE \
    "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null \
    || { cat "$dir/server.log"; return 1; }
  export PGHOST=$dir PGPORT PGUSER=postgres
}

cluster_stop() {
  local dir=$1
  [ -d "$dir/data" ] && as_postgres "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
}
