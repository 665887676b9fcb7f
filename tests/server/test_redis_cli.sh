#!/bin/sh
# test_redis_cli.sh - cascaded driven by Redis's own tools.
#
# What it checks (against the real daemon binary, started here on a free
# loopback port and a Unix socket in a fresh temp dir):
#   - redis-cli: SET/GET over TCP and the Unix socket, a value from stdin
#     (-x) read back byte-exact, INFO sections, DBSIZE;
#   - redis-cli --pipe: mass insert of 10,000 keys reports 0 errors and
#     10,000 replies, then DBSIZE == 10000 and sample values are right;
#   - redis-benchmark -t set,get,mset -n 2000 -q: a "requests per second"
#     line for each of SET, GET and MSET and no error line;
#   - SIGTERM: exit 0, no sanitizer report on stderr.
#
# Usage: test_redis_cli.sh /path/to/cascaded   (or CASCADED=...)
# Exit 0 pass, 1 fail, 77 skip (redis-cli or redis-benchmark missing).
set -u

BIN=${1:-${CASCADED:-}}
if [ -z "$BIN" ] || [ ! -x "$BIN" ]; then
  echo "SKIP: cascaded binary not given (argv[1] or \$CASCADED)"
  exit 77
fi
for t in redis-cli redis-benchmark python3; do
  if ! command -v "$t" >/dev/null 2>&1; then
    echo "SKIP: $t not installed"
    exit 77
  fi
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/cascaded-cli.XXXXXX")
PID=
# shellcheck disable=SC2317  # called by the trap
cleanup() {
  [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

fail() {
  echo "FAIL: $*"
  if [ -f "$TMP/stderr" ]; then
    echo "--- daemon stderr (tail)"
    tail -20 "$TMP/stderr"
  fi
  exit 1
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

SOCK="$TMP/c.sock"
started=0
for _ in 1 2 3; do
  PORT=$(free_port)
  "$BIN" --port "$PORT" --unixsocket "$SOCK" --dram 128m --threads 2 \
    </dev/null >"$TMP/stderr" 2>&1 &
  PID=$!
  i=0
  while [ $i -lt 300 ]; do
    if ! kill -0 "$PID" 2>/dev/null; then break; fi
    if [ "$(redis-cli -p "$PORT" PING 2>/dev/null)" = "PONG" ]; then
      started=1
      break
    fi
    sleep 0.1
    i=$((i + 1))
  done
  [ $started = 1 ] && break
  grep -q "Address already in use" "$TMP/stderr" || break
done
[ $started = 1 ] || fail "cascaded did not start"
CLI="redis-cli -p $PORT"

ok() { echo "ok   $*"; }

# --- set/get, TCP and Unix socket
[ "$($CLI SET greeting "hello world")" = "OK" ] || fail "SET"
[ "$($CLI GET greeting)" = "hello world" ] || fail "GET"
[ "$(redis-cli -s "$SOCK" GET greeting)" = "hello world" ] || fail "GET over unix socket"
[ "$(redis-cli -s "$SOCK" SET u1 v1)" = "OK" ] || fail "SET over unix socket"
[ "$($CLI GET u1)" = "v1" ] || fail "unix-socket SET not seen over TCP"
[ "$($CLI EXISTS greeting u1 nope)" = "2" ] || fail "EXISTS"
out=$($CLI NOSUCHCMD 2>&1)
case "$out" in *"unknown command 'NOSUCHCMD'"*) ;; *) fail "unknown command: $out" ;; esac
ok "redis-cli set/get (tcp, unix)"

# --- a value from stdin (-x), binary bytes included
head -c 300000 /dev/urandom >"$TMP/blob"
[ "$($CLI -x SET blob <"$TMP/blob")" = "OK" ] || fail "SET -x"
# --raw GET appends a newline: strip exactly one byte
$CLI --raw GET blob >"$TMP/blob.out" || fail "GET blob"
size=$(wc -c <"$TMP/blob.out")
head -c $((size - 1)) "$TMP/blob.out" >"$TMP/blob.back"
cmp -s "$TMP/blob" "$TMP/blob.back" || fail "value from stdin differs on GET"
[ "$($CLI STRLEN blob)" = "300000" ] || fail "STRLEN blob"
ok "redis-cli -x (300,000 random bytes)"

# --- INFO
info=$($CLI INFO)
for f in redis_version connected_clients used_memory total_commands_processed dram_capacity; do
  echo "$info" | grep -q "^$f:" || fail "INFO lacks $f"
done
$CLI INFO keyspace | grep -q '^db0:keys=3' || fail "INFO keyspace: $($CLI INFO keyspace)"
ok "redis-cli INFO"

# --- mass insert with --pipe
$CLI FLUSHDB >/dev/null
python3 - "$TMP/mass.resp" <<'EOF'
import sys
with open(sys.argv[1], "wb") as f:
    for i in range(10000):
        k = b"key:%d" % i
        v = b"value-%d-" % i + b"x" * (i % 300)
        f.write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, len(v), v))
EOF
$CLI --pipe <"$TMP/mass.resp" >"$TMP/pipe.out" 2>&1 || fail "--pipe: $(cat "$TMP/pipe.out")"
grep -q "errors: 0, replies: 10000" "$TMP/pipe.out" || fail "--pipe: $(cat "$TMP/pipe.out")"
[ "$($CLI DBSIZE)" = "10000" ] || fail "DBSIZE after --pipe: $($CLI DBSIZE)"
[ "$($CLI GET key:0)" = "value-0-" ] || fail "key:0"
[ "$($CLI STRLEN key:9999)" = "$((11 + 9999 % 300))" ] || fail "key:9999 length"
ok "redis-cli --pipe 10,000 keys, DBSIZE 10000"

# --- redis-benchmark
redis-benchmark -p "$PORT" -t set,get,mset -n 2000 -q >"$TMP/bench.out" 2>&1
rc=$?
tr '\r' '\n' <"$TMP/bench.out" | grep -v '^ *$' | grep -v 'rps=' >"$TMP/bench.lines"
cat "$TMP/bench.lines"
[ $rc = 0 ] || fail "redis-benchmark exit $rc"
for t in SET GET MSET; do
  grep -q "^$t.*: .*requests per second" "$TMP/bench.lines" || fail "redis-benchmark: no result for $t"
done
if grep -qiE "error|err |refused|timeout" "$TMP/bench.lines"; then
  fail "redis-benchmark reported errors"
fi
ok "redis-benchmark set,get,mset"

# --- stop
kill -TERM "$PID"
wait "$PID"
rc=$?
PID=
[ $rc = 0 ] || fail "cascaded exit $rc after SIGTERM"
if grep -qE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$TMP/stderr"; then
  fail "sanitizer report in daemon stderr"
fi
ok "SIGTERM: exit 0"
echo "all passed"
exit 0
