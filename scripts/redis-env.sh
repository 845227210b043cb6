#!/usr/bin/env bash
# Starts and stops the redis-server processes that tiercache's integration tests and demos
# run against. Everything listens on 127.0.0.1 only, on random free ports.
#
#   scripts/redis-env.sh start   start the servers (if not running), print the env lines
#   scripts/redis-env.sh env     print the env lines (export VAR=...) of the running servers
#   scripts/redis-env.sh stop    stop the servers this script started, remove their files
#   scripts/redis-env.sh status  exit 0 if the servers are running
#
# Use from a shell or a script:
#   scripts/redis-env.sh start && source "${TIERCACHE_REDIS_ENV_DIR:-/tmp/tiercache-redis-env}/env"
#   eval "$(scripts/redis-env.sh env)"
#
# Files:
#   $TIERCACHE_REDIS_ENV_DIR (default /tmp/tiercache-redis-env), the state directory:
#     current   the path of the run directory of the running servers
#     env       the export lines (what `env` prints)
#     lock      serialises start/stop across shells
#   the run directory (mktemp -d), one subdirectory per server: redis.pid, redis.log, data;
#     port   the port the server listens on
#
# Variables exported for the tests:
#   TIERCACHE_TEST_REDIS_URL   redis://127.0.0.1:PORT (the standalone server, no auth, no TLS)
#
#   The `tls` server: TLS only (no plaintext port), client certificates REQUIRED. Its PKI is
#   made at each start in <run dir>/tls/pki (EC P-256 keys, valid 30 days):
#   TIERCACHE_TEST_REDIS_TLS_URL         rediss://127.0.0.1:PORT
#   TIERCACHE_TEST_REDIS_TLS_CA          the test CA's certificate (PEM); it signed the server's
#                                        certificate (subjectAltName IP:127.0.0.1, DNS:localhost)
#   TIERCACHE_TEST_REDIS_TLS_CERT        a client certificate signed by that CA (PEM) ...
#   TIERCACHE_TEST_REDIS_TLS_KEY         ... and its private key (PEM, unencrypted)
#   TIERCACHE_TEST_REDIS_TLS_OTHER_CA    an unrelated CA: trusting it instead of _TLS_CA must make
#                                        the server's certificate fail verification
#   TIERCACHE_TEST_REDIS_TLS_OTHER_CERT  a client certificate signed by the other CA, which the
#   TIERCACHE_TEST_REDIS_TLS_OTHER_KEY   server must reject; and its key
#   e.g. redis-cli -p PORT --tls --cacert "$TIERCACHE_TEST_REDIS_TLS_CA" \
#          --cert "$TIERCACHE_TEST_REDIS_TLS_CERT" --key "$TIERCACHE_TEST_REDIS_TLS_KEY" ping
#
#   The `acl` server: plaintext, ACL users (passwords are random hex, new at each start):
#   TIERCACHE_TEST_REDIS_ACL_URL             redis://127.0.0.1:PORT (no credentials in it)
#   TIERCACHE_TEST_REDIS_ACL_USER            `tiercache`: only keys and channels that start with
#                                            the prefix; every command but the @dangerous ones
#   TIERCACHE_TEST_REDIS_ACL_PASSWORD        its password (HELLO 3 AUTH user password works)
#   TIERCACHE_TEST_REDIS_ACL_ADMIN_PASSWORD  the password of the `default` user (full access)
#   TIERCACHE_TEST_REDIS_ACL_PREFIX          tc:
#   Both users are in <run dir>/acl/users.acl (as SHA-256 hashes), not on the command line.
#
# The env file holds passwords: it is written readable by its owner only.
#
# Adding a server (TLS, ACL, cluster...): write a function `server_<name>` that calls
# `launch_redis <name> [redis-server args...]` and then `add_env VAR value` with what it needs
# ($LAUNCHED_PORT is the port it got), and add <name> to SERVERS below.
set -euo pipefail

readonly SERVERS=(standalone tls acl)

STATE_DIR="${TIERCACHE_REDIS_ENV_DIR:-/tmp/tiercache-redis-env}"
readonly STATE_DIR
# The port range can be narrowed for tests of this script; cluster servers (later) need
# port + 10000 free too, so they pick below 55535.
readonly PORT_MIN="${TIERCACHE_REDIS_PORT_MIN:-20000}"
readonly PORT_MAX="${TIERCACHE_REDIS_PORT_MAX:-60000}"
readonly START_DEADLINE_SECONDS=10
readonly STOP_DEADLINE_SECONDS=10
readonly POLL_INTERVAL=0.05
# The test certificates of the `tls` server are made at each start; 30 days outlives any run.
readonly TLS_CERT_DAYS=30
# The restricted user of the `acl` server, and the key/channel prefix it may use.
readonly ACL_USER=tiercache
readonly ACL_PREFIX=tc:

log() { echo "redis-env: $*" >&2; }
die() { log "error: $*"; exit 1; }

# ---- helpers ---------------------------------------------------------------------------------

# True if something accepts TCP connections on 127.0.0.1:$1.
port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Prints a random port in [min, max] that nothing listens on. Args: min max.
pick_port() {
  local min="$1" max="$2" port attempt
  for ((attempt = 0; attempt < 100; attempt++)); do
    port=$((min + (RANDOM * 32768 + RANDOM) % (max - min + 1)))
    if ! port_in_use "$port"; then
      echo "$port"
      return 0
    fi
  done
  die "no free port found in $min-$max"
}

# Current time in milliseconds.
now_ms() {
  local t="${EPOCHREALTIME//[.,]/}"
  echo $((10#$t / 1000))
}

# True if process $1 exists and is not a zombie (an exited daemon whose new parent has not
# reaped it yet counts as exited).
process_running() {
  local pid="$1" stat
  kill -0 "$pid" 2>/dev/null || return 1
  stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  [[ "${stat:0:1}" != Z ]]
}

# True if the process in pid file $1 is alive and is a redis-server.
pidfile_alive() {
  local pidfile="$1" pid
  [[ -s "$pidfile" ]] || return 1
  pid="$(<"$pidfile")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  process_running "$pid" || return 1
  # Guard against pid reuse: only ever treat a redis-server as ours.
  [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == redis-server* ]]
}

# The run directory of the running servers, or nothing.
current_run_dir() {
  if [[ -s "$STATE_DIR/current" ]]; then
    local dir
    dir="$(<"$STATE_DIR/current")"
    if [[ -d "$dir" ]]; then echo "$dir"; fi
  fi
}

# True if every server of run directory $1 is alive.
all_alive() {
  local run_dir="$1" name
  for name in "${SERVERS[@]}"; do
    pidfile_alive "$run_dir/$name/redis.pid" || return 1
  done
}

# ---- starting --------------------------------------------------------------------------------

RUN_DIR=""
LAUNCHED_PORT=""
ENV_LINES=()
REDIS_CLI_ARGS=()

add_env() {
  ENV_LINES+=("export $1=$2")
}

# launch_redis NAME [redis-server args...]
# Starts one daemonized redis-server in $RUN_DIR/NAME on a free loopback port, waits until it
# answers PING, and sets LAUNCHED_PORT. Retries with another port if the port was taken.
# Arguments that use the port may contain the literal text {PORT}; it is replaced (so a TLS
# server can pass `--port 0 --tls-port {PORT}`: then --port is not added). The ping uses
# REDIS_CLI_ARGS (e.g. TLS client options) if set by the caller.
launch_redis() {
  local name="$1"
  shift
  local dir="$RUN_DIR/$name" attempt port deadline arg uses_port_placeholder=0
  mkdir -p "$dir/data"
  for arg in "$@"; do
    if [[ "$arg" == *"{PORT}"* ]]; then uses_port_placeholder=1; fi
  done

  for ((attempt = 1; attempt <= 5; attempt++)); do
    port="$(pick_port "$PORT_MIN" "$PORT_MAX")"
    local args=()
    if ((uses_port_placeholder == 0)); then args+=(--port "$port"); fi
    for arg in "$@"; do args+=("${arg//\{PORT\}/$port}"); done
    rm -f "$dir/redis.pid"
    : >"$dir/redis.log"
    redis-server \
      --bind 127.0.0.1 \
      --save '' \
      --appendonly no \
      --daemonize yes \
      --pidfile "$dir/redis.pid" \
      --logfile "$dir/redis.log" \
      --dir "$dir/data" \
      --enable-debug-command local \
      "${args[@]}" 9>&- # the daemon must not inherit (and so hold) the lock

    deadline=$(($(now_ms) + START_DEADLINE_SECONDS * 1000))
    while (($(now_ms) < deadline)); do
      if [[ "$(redis-cli -h 127.0.0.1 -p "$port" "${REDIS_CLI_ARGS[@]}" ping 2>/dev/null)" == PONG ]]; then
        if pidfile_alive "$dir/redis.pid"; then
          echo "$port" >"$dir/port"
          LAUNCHED_PORT="$port"
          log "$name: redis-server pid $(<"$dir/redis.pid") on 127.0.0.1:$port"
          return 0
        fi
        # Something else answered on that port (lost a race for it): try another one.
        break
      fi
      if grep -q "Address already in use" "$dir/redis.log" 2>/dev/null; then
        break
      fi
      sleep "$POLL_INTERVAL"
    done

    if grep -q "Address already in use" "$dir/redis.log" 2>/dev/null; then
      log "$name: port $port taken, retrying"
      stop_pidfile "$dir/redis.pid"
      continue
    fi
    if pidfile_alive "$dir/redis.pid"; then
      stop_pidfile "$dir/redis.pid"
      die "$name: redis-server did not answer PING within ${START_DEADLINE_SECONDS}s; log:
$(tail -n 20 "$dir/redis.log")"
    fi
    log "$name: redis-server on port $port exited; retrying"
    tail -n 5 "$dir/redis.log" >&2 || true
  done
  die "$name: could not start redis-server; log:
$(tail -n 20 "$dir/redis.log")"
}

# Prints $1 random bytes as hex.
random_hex() {
  od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'
}

# make_ca DIR NAME: a self-signed CA, DIR/NAME.key + DIR/NAME.crt.
make_ca() {
  local dir="$1" name="$2"
  openssl req -x509 -new -config "$dir/openssl.cnf" -extensions ca_ext \
    -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -days "$TLS_CERT_DAYS" \
    -subj "/O=tiercache tests/CN=tiercache test $name" \
    -keyout "$dir/$name.key" -out "$dir/$name.crt"
}

# make_leaf DIR CA NAME EXTENSIONS: a key and a certificate signed by CA (DIR/CA.crt/.key),
# DIR/NAME.key + DIR/NAME.crt, with the extensions of section EXTENSIONS of openssl.cnf.
# (`req -CA` makes key and certificate in one process; it needs OpenSSL 3.)
make_leaf() {
  local dir="$1" ca="$2" name="$3" extensions="$4"
  openssl req -x509 -new -config "$dir/openssl.cnf" -extensions "$extensions" \
    -CA "$dir/$ca.crt" -CAkey "$dir/$ca.key" \
    -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -days "$TLS_CERT_DAYS" \
    -subj "/O=tiercache tests/CN=tiercache test $name" \
    -keyout "$dir/$name.key" -out "$dir/$name.crt"
}

# make_test_pki DIR: the files of the `tls` server (see the header of this file):
#   ca.crt/.key            the test CA
#   server.crt/.key        signed by ca; subjectAltName IP:127.0.0.1, DNS:localhost
#   client.crt/.key        signed by ca
#   other-ca.crt/.key      an unrelated CA
#   other-client.crt/.key  signed by other-ca
# A private openssl.cnf, so the system's configuration adds nothing to the certificates.
# Callers check the status (set -e does not apply in a `||` list), and find openssl's messages
# in its stderr.
make_test_pki() {
  local dir="$1"
  mkdir -p "$dir"
  cat >"$dir/openssl.cnf" <<'EOF'
[req]
distinguished_name = req_dn
prompt = no
[req_dn]
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
  make_ca "$dir" ca &&
    make_leaf "$dir" ca server server_ext &&
    make_leaf "$dir" ca client client_ext &&
    make_ca "$dir" other-ca &&
    make_leaf "$dir" other-ca other-client client_ext &&
    chmod 600 "$dir"/*.key
}

# The servers. One function per entry of SERVERS.
server_standalone() {
  REDIS_CLI_ARGS=()
  launch_redis standalone
  add_env TIERCACHE_TEST_REDIS_URL "redis://127.0.0.1:$LAUNCHED_PORT"
}

server_tls() {
  command -v openssl >/dev/null || die "openssl not found (run scripts/setup.sh)"
  local pki="$RUN_DIR/tls/pki"
  mkdir -p "$RUN_DIR/tls"
  make_test_pki "$pki" 2>"$RUN_DIR/tls/openssl.log" ||
    die "tls: could not make the test certificates in $pki; openssl said:
$(tail -n 20 "$RUN_DIR/tls/openssl.log")"
  REDIS_CLI_ARGS=(--tls --cacert "$pki/ca.crt" --cert "$pki/client.crt" --key "$pki/client.key")
  launch_redis tls --port 0 --tls-port '{PORT}' \
    --tls-cert-file "$pki/server.crt" --tls-key-file "$pki/server.key" \
    --tls-ca-cert-file "$pki/ca.crt" --tls-auth-clients yes
  REDIS_CLI_ARGS=()
  add_env TIERCACHE_TEST_REDIS_TLS_URL "rediss://127.0.0.1:$LAUNCHED_PORT"
  add_env TIERCACHE_TEST_REDIS_TLS_CA "$pki/ca.crt"
  add_env TIERCACHE_TEST_REDIS_TLS_CERT "$pki/client.crt"
  add_env TIERCACHE_TEST_REDIS_TLS_KEY "$pki/client.key"
  add_env TIERCACHE_TEST_REDIS_TLS_OTHER_CA "$pki/other-ca.crt"
  add_env TIERCACHE_TEST_REDIS_TLS_OTHER_CERT "$pki/other-client.crt"
  add_env TIERCACHE_TEST_REDIS_TLS_OTHER_KEY "$pki/other-client.key"
}

# The users are in an ACL file (mode 600), so the passwords are not on redis-server's command
# line; redis-cli gets the admin password through REDISCLI_AUTH, not its arguments.
server_acl() {
  local dir="$RUN_DIR/acl" admin_password user_password admin_hash user_hash
  admin_password="$(random_hex 16)"
  user_password="$(random_hex 16)"
  admin_hash="$(printf '%s' "$admin_password" | sha256sum | cut -d' ' -f1)"
  user_hash="$(printf '%s' "$user_password" | sha256sum | cut -d' ' -f1)"
  mkdir -p "$dir"
  (
    umask 077
    cat >"$dir/users.acl" <<EOF
user default on #$admin_hash ~* &* +@all
user $ACL_USER on #$user_hash ~$ACL_PREFIX* &$ACL_PREFIX* +@all -@dangerous
EOF
  )
  REDIS_CLI_ARGS=()
  REDISCLI_AUTH="$admin_password" launch_redis acl --aclfile "$dir/users.acl"
  add_env TIERCACHE_TEST_REDIS_ACL_URL "redis://127.0.0.1:$LAUNCHED_PORT"
  add_env TIERCACHE_TEST_REDIS_ACL_USER "$ACL_USER"
  add_env TIERCACHE_TEST_REDIS_ACL_PASSWORD "$user_password"
  add_env TIERCACHE_TEST_REDIS_ACL_ADMIN_PASSWORD "$admin_password"
  add_env TIERCACHE_TEST_REDIS_ACL_PREFIX "$ACL_PREFIX"
}

write_env() {
  local tmp="$STATE_DIR/env.tmp.$$"
  (
    umask 077 # it holds passwords
    {
      echo "# tiercache test servers, started by scripts/redis-env.sh (run dir $RUN_DIR)"
      printf '%s\n' "${ENV_LINES[@]}"
    } >"$tmp"
  )
  cp "$tmp" "$RUN_DIR/env"
  mv "$tmp" "$STATE_DIR/env"
}

cmd_start() {
  command -v redis-server >/dev/null || die "redis-server not found (run scripts/setup.sh)"
  command -v redis-cli >/dev/null || die "redis-cli not found (run scripts/setup.sh)"
  local existing
  existing="$(current_run_dir)"
  if [[ -n "$existing" ]]; then
    if all_alive "$existing" && [[ -s "$STATE_DIR/env" ]]; then
      log "already running (run dir $existing)"
      cmd_env
      return 0
    fi
    log "found a stale environment in $existing; cleaning it up"
    stop_run_dir "$existing"
  fi

  RUN_DIR="$(mktemp -d "${TMPDIR:-/tmp}/tiercache-redis.XXXXXX")"
  echo "$RUN_DIR" >"$STATE_DIR/current"
  # On failure (die exits), do not leave half an environment behind.
  trap 'stop_run_dir "$RUN_DIR"' EXIT
  local name
  for name in "${SERVERS[@]}"; do
    "server_$name"
  done
  write_env
  trap - EXIT
  cmd_env
}

# ---- stopping --------------------------------------------------------------------------------

# Sends SIGTERM to the redis-server of pid file $1 and waits for it to exit (SIGKILL after the
# deadline). Never signals a process that is not a redis-server.
stop_pidfile() {
  local pidfile="$1" pid deadline
  pidfile_alive "$pidfile" || return 0
  pid="$(<"$pidfile")"
  kill -TERM "$pid" 2>/dev/null || return 0
  deadline=$(($(now_ms) + STOP_DEADLINE_SECONDS * 1000))
  while process_running "$pid"; do
    if (($(now_ms) >= deadline)); then
      log "pid $pid did not exit after SIGTERM; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      deadline=$(($(now_ms) + STOP_DEADLINE_SECONDS * 1000))
    fi
    sleep "$POLL_INTERVAL"
  done
}

stop_run_dir() {
  local run_dir="$1" pidfile
  if [[ -d "$run_dir" ]]; then
    for pidfile in "$run_dir"/*/redis.pid; do
      [[ -e "$pidfile" ]] || continue
      stop_pidfile "$pidfile"
    done
    rm -rf "$run_dir"
  fi
  rm -f "$STATE_DIR/current" "$STATE_DIR/env"
}

cmd_stop() {
  local run_dir
  run_dir="$(current_run_dir)"
  if [[ -z "$run_dir" ]]; then
    rm -f "$STATE_DIR/current" "$STATE_DIR/env"
    log "not running"
    return 0
  fi
  stop_run_dir "$run_dir"
  log "stopped (removed $run_dir)"
}

# ---- reporting -------------------------------------------------------------------------------

cmd_env() {
  local run_dir
  run_dir="$(current_run_dir)"
  if [[ -z "$run_dir" || ! -s "$STATE_DIR/env" ]]; then
    die "not running (start it with: $0 start)"
  fi
  grep '^export ' "$STATE_DIR/env"
}

cmd_status() {
  local run_dir
  run_dir="$(current_run_dir)"
  if [[ -n "$run_dir" ]] && all_alive "$run_dir"; then
    log "running (run dir $run_dir)"
    return 0
  fi
  log "not running"
  return 1
}

main() {
  local cmd="${1:-}"
  case "$cmd" in
    start | stop | env | status) ;;
    *)
      echo "usage: $0 start|stop|env|status" >&2
      exit 2
      ;;
  esac
  mkdir -p "$STATE_DIR"
  # One start/stop at a time per state directory (`env` and `status` only read).
  if [[ "$cmd" == start || "$cmd" == stop ]] && command -v flock >/dev/null; then
    exec 9>"$STATE_DIR/lock"
    flock -w 60 9 || die "could not lock $STATE_DIR/lock"
  fi
  "cmd_$cmd"
}

main "$@"
