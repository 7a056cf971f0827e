# shellcheck shell=bash
# A throwaway PostgreSQL cluster for tests; source this file, then:
#
#   scratch_postgres_start DIR    # sets SCRATCH_PG_URL (server-admin URL)
#   scratch_postgres_stop         # idempotent; call from an EXIT trap
#
# The cluster listens on 127.0.0.1 only, on a free port, with trust auth for
# loopback connections; nothing outside DIR is touched.

SCRATCH_PG_DIR=""
SCRATCH_PG_BIN=""
SCRATCH_PG_RUN_AS=()

_scratch_pg_log() { printf '[postgres] %s\n' "$*" >&2; }

# The Debian server binaries live in a versioned directory off PATH; wrappers
# on PATH (if any) are ignored so a fresh machine behaves like this one.
_scratch_pg_find_bin() {
  local dir newest=""
  for dir in /usr/lib/postgresql/*/bin; do
    [[ -x "$dir/initdb" && -x "$dir/pg_ctl" ]] && newest="$dir"
  done
  if [[ -z "$newest" ]] && command -v pg_config >/dev/null; then
    dir="$(pg_config --bindir)"
    [[ -x "$dir/initdb" && -x "$dir/pg_ctl" ]] && newest="$dir"
  fi
  [[ -n "$newest" ]] || return 1
  printf '%s\n' "$newest"
}

_scratch_pg_free_port() {
  # Binding port 0 lets the kernel pick; a tiny race with other processes is
  # accepted (pg_ctl fails loudly if the port was taken meanwhile).
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

scratch_postgres_start() {
  local base="$1" port
  if ! SCRATCH_PG_BIN="$(_scratch_pg_find_bin)"; then
    _scratch_pg_log "error: PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin; install the Debian package postgresql"
    return 1
  fi
  SCRATCH_PG_DIR="$base/postgres"
  rm -rf "$SCRATCH_PG_DIR"
  mkdir -p "$SCRATCH_PG_DIR/socket"

  # initdb refuses to run as root: hand the directory to an unprivileged user.
  if [[ $(id -u) -eq 0 ]]; then
    local user=postgres
    if ! id "$user" >/dev/null 2>&1; then
      user=nobody
    fi
    chown -R "$user" "$SCRATCH_PG_DIR"
    # The parent directories must be traversable by that user.
    chmod o+x "$base"
    SCRATCH_PG_RUN_AS=(runuser -u "$user" --)
  else
    SCRATCH_PG_RUN_AS=()
  fi

  port="$(_scratch_pg_free_port)"
  if ! "${SCRATCH_PG_RUN_AS[@]}" "$SCRATCH_PG_BIN/initdb" -D "$SCRATCH_PG_DIR/data" \
      -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 \
      >"$SCRATCH_PG_DIR/initdb.log" 2>&1; then
    _scratch_pg_log "error: initdb failed; log follows"
    cat "$SCRATCH_PG_DIR/initdb.log" >&2
    return 1
  fi
  if ! "${SCRATCH_PG_RUN_AS[@]}" "$SCRATCH_PG_BIN/pg_ctl" -D "$SCRATCH_PG_DIR/data" \
      -l "$SCRATCH_PG_DIR/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $SCRATCH_PG_DIR/socket -c fsync=off -c max_connections=200" \
      start >/dev/null; then
    _scratch_pg_log "error: PostgreSQL did not start; log follows"
    cat "$SCRATCH_PG_DIR/server.log" >&2
    return 1
  fi
  SCRATCH_PG_URL="postgres://postgres@127.0.0.1:$port/postgres"
  export SCRATCH_PG_URL
  _scratch_pg_log "running on 127.0.0.1:$port (data in $SCRATCH_PG_DIR)"
}

scratch_postgres_stop() {
  if [[ -n "$SCRATCH_PG_DIR" && -f "$SCRATCH_PG_DIR/data/postmaster.pid" ]]; then
    "${SCRATCH_PG_RUN_AS[@]}" "$SCRATCH_PG_BIN/pg_ctl" -D "$SCRATCH_PG_DIR/data" \
      -m immediate -w stop >/dev/null 2>&1 || true
    _scratch_pg_log "stopped"
  fi
  SCRATCH_PG_DIR=""
}
