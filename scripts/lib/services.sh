# shellcheck shell=bash
# Throwaway PostgreSQL and Redis for scripts/test. Sourced, not executed.
# Everything lives under $ATRIUM_TMP; services_stop undoes the start_* functions.

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'scripts/test: FAILED: %s\n' "$*" >&2; exit 1; }

# apt-get install that leaves no system daemons running: Debian's postinst
# scripts would start postgresql / redis-server on their default ports unless
# /usr/sbin/policy-rc.d says no (exit 101). Docker images usually have one.
apt_install() {
  local sudo=() policy=/usr/sbin/policy-rc.d
  [[ $EUID -eq 0 ]] || sudo=(sudo)
  log "installing $* with apt-get"
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod +x "$policy"
    ATRIUM_POLICY_RC=$policy # also removed by services_stop if we are interrupted
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  if [[ -n ${ATRIUM_POLICY_RC:-} ]]; then "${sudo[@]}" rm -f "$policy"; ATRIUM_POLICY_RC=; fi
}

# First port >= $1 that nothing answers on (a TCP connect probe: needs no
# python or ss). Another run may still bind it first; callers retry.
free_port() {
  local p=$1
  while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done
  echo "$p"
}

# Debian keeps initdb/pg_ctl off PATH, in /usr/lib/postgresql/<major>/bin.
find_pg_bin() {
  local d
  if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
    dirname "$(readlink -f "$(command -v initdb)")"; return
  fi
  while read -r d; do # newest major version first
    [[ -x $d/initdb && -x $d/pg_ctl ]] && { echo "$d"; return; }
  done < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V -r)
  return 1
}

start_postgres() {
  local bin port attempt user dir=$ATRIUM_TMP/pg
  bin=$(find_pg_bin) || { apt_install postgresql; bin=$(find_pg_bin) || die "postgres: no initdb after install"; }
  # initdb refuses to run as root: use an unprivileged user, making one if needed.
  PG_AS=()
  if [[ $EUID -eq 0 ]]; then
    user=postgres
    if ! id -u "$user" >/dev/null 2>&1; then
      user=atrium-test
      id -u "$user" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$user"
    fi
    PG_AS=(runuser -u "$user" --)
    chmod 0711 "$ATRIUM_TMP" # mktemp -d makes it 0700; the pg user must traverse it
    install -d -o "$user" -m 0700 "$dir"
  else
    mkdir -m 0700 "$dir"
  fi
  # Bootstrap superuser "atrium" (superuser implies CREATEDB). Trust auth is
  # fine: the server listens on loopback only, its socket dir is private.
  (cd "$dir" && "${PG_AS[@]}" "$bin/initdb" -D "$dir/data" -U atrium --auth=trust \
    -E UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1) || { cat "$dir/initdb.log" >&2; die "postgres: initdb"; }
  printf '%s\n' "listen_addresses = '127.0.0.1'" "unix_socket_directories = '$dir'" \
    'fsync = off' 'synchronous_commit = off' 'full_page_writes = off' \
    'max_connections = 300' >>"$dir/data/postgresql.conf"
  PG_CTL=("${PG_AS[@]}" "$bin/pg_ctl" -D "$dir/data")
  # A concurrent run may grab the same free port first: then try further up.
  port=55432
  for attempt in 1 2 3 4 5 6 7 8; do
    port=$(free_port "$port")
    echo "port = $port" >>"$dir/data/postgresql.conf" # the last setting wins
    (cd "$dir" && "${PG_CTL[@]}" -l "$dir/server.log" -w -t 60 start >/dev/null) && break
    ((attempt < 8)) || { cat "$dir/server.log" >&2; die "postgres: could not start (last port $port)"; }
    port=$((port + 1 + RANDOM % 8))
  done
  for _ in $(seq 100); do
    "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" && break
    sleep 0.1
  done
  "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" || die "postgres: pg_isready never answered on $port"
  export ATRIUM_TEST_POSTGRES_URL="postgres://atrium@127.0.0.1:$port/postgres"
  STARTED+=("postgres $ATRIUM_TEST_POSTGRES_URL")
}

start_redis() {
  local port attempt
  command -v redis-server >/dev/null || apt_install redis-server
  # Backgrounded rather than --daemonize, so a failed bind shows up at once
  # as a dead pid and we can retry on another port.
  port=56379
  for attempt in 1 2 3 4 5 6 7 8; do
    port=$(free_port "$port")
    redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
      --pidfile "$ATRIUM_TMP/redis.pid" --dir "$ATRIUM_TMP" >>"$ATRIUM_TMP/redis.log" 2>&1 &
    REDIS_PID=$!
    # Ready once *our* server answers (not a concurrent run's, on a port we lost).
    for _ in $(seq 100); do
      redis-cli -p "$port" info server 2>/dev/null | grep -q "^process_id:$REDIS_PID\b" && break 2
      kill -0 "$REDIS_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill "$REDIS_PID" 2>/dev/null || true # alive but not answering: drop it
    ((attempt < 8)) || { cat "$ATRIUM_TMP/redis.log" >&2; die "redis: could not start (last port $port)"; }
    port=$((port + 1 + RANDOM % 8))
  done
  [[ $(redis-cli -p "$port" ping) == PONG ]] || die "redis: no PONG on port $port"
  export ATRIUM_TEST_REDIS_URL="redis://127.0.0.1:$port/"
  STARTED+=("redis $ATRIUM_TEST_REDIS_URL")
}

# The EXIT trap: safe at any point, even halfway through a start; never fails.
services_stop() {
  if [[ -n ${PG_CTL+x} && -f $ATRIUM_TMP/pg/data/postmaster.pid ]]; then
    (cd "$ATRIUM_TMP" && "${PG_CTL[@]}" -m immediate -w stop >/dev/null 2>&1) || true
  fi
  if [[ -n ${REDIS_PID:-} ]]; then
    kill "$REDIS_PID" 2>/dev/null || true
    # wait (up to 5s) so nothing outlives the script
    for _ in $(seq 50); do kill -0 "$REDIS_PID" 2>/dev/null || break; sleep 0.1; done
  fi
  if [[ -n ${ATRIUM_POLICY_RC:-} ]]; then rm -f "$ATRIUM_POLICY_RC" 2>/dev/null || sudo rm -f "$ATRIUM_POLICY_RC" || true; fi
  if [[ -n ${ATRIUM_TMP:-} ]]; then rm -rf "$ATRIUM_TMP"; fi
}
