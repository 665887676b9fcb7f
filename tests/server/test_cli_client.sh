#!/usr/bin/env bash
# test_cli_client.sh - the client commands of `cascade` (put, get, del,
# exists, stat, ping) against a real cascaded.
#
#   tests/server/test_cli_client.sh PATH/TO/cascade PATH/TO/cascaded
#
# Starts cascaded on a free TCP port and a Unix socket in a temporary
# directory, runs every command (binary values through files and stdin,
# byte-exact with cmp; missing keys; options; the environment; usage errors),
# then a second daemon with --requirepass and a namespace for AUTH, and stops
# each with SIGTERM, which must exit 0.  Exit 0 pass, 1 fail, 77 skipped
# (something needed is missing).
set -u

if [ $# -ne 2 ]; then
  echo "usage: $0 PATH/TO/cascade PATH/TO/cascaded" >&2
  exit 2
fi
CLI=$1
DAEMON=$2
for x in "$CLI" "$DAEMON"; do
  if [ ! -x "$x" ]; then
    echo "SKIP: $x is not an executable" >&2
    exit 77
  fi
done
for t in cmp head mktemp od grep sleep; do
  if ! command -v "$t" >/dev/null 2>&1; then
    echo "SKIP: $t not found" >&2
    exit 77
  fi
done
if [ ! -r /dev/urandom ]; then
  echo "SKIP: no /dev/urandom" >&2
  exit 77
fi
# Absolute paths: the commands below run in the temporary directory.
case $CLI in /*) ;; *) CLI=$PWD/$CLI ;; esac
case $DAEMON in /*) ;; *) DAEMON=$PWD/$DAEMON ;; esac

TMP=$(mktemp -d "${TMPDIR:-/tmp}/cascade-cli-test.XXXXXX") || exit 77
cd "$TMP" || exit 77
PIDS=()
cleanup() {
  for p in "${PIDS[@]+"${PIDS[@]}"}"; do kill -KILL "$p" 2>/dev/null; done
  cd / && rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
# The client's environment must not point elsewhere.
unset CASCADE_HOST CASCADE_PORT CASCADE_UNIX CASCADE_USER CASCADE_PASSWORD

FAILS=0
CHECKS=0
pass() { CHECKS=$((CHECKS + 1)); }
fail() {
  CHECKS=$((CHECKS + 1))
  FAILS=$((FAILS + 1))
  echo "FAIL: $*" >&2
}

# run EXPECTED_RC DESCRIPTION CMD...: stdout in out, stderr in err.
run() {
  local want=$1 what=$2 rc
  shift 2
  "$@" >out 2>err
  rc=$?
  if [ "$rc" -eq "$want" ]; then
    pass
  else
    fail "$what: exit $rc, expected $want: $*"
    sed 's/^/  stderr: /' err | head -5 >&2
  fi
  # a sanitizer's report fails even a command expected to fail
  if grep -Eq 'Sanitizer|runtime error:' err; then
    fail "$what: sanitizer report: $*"
    head -20 err >&2
  fi
}
# expect FILE PATTERN DESCRIPTION: FILE has a line matching PATTERN (grep -E).
expect() {
  if grep -Eq -- "$2" "$1"; then pass; else
    fail "$3: no '$2' in $1:"
    head -5 "$1" | sed 's/^/  /' >&2
  fi
}
same() { # same FILE1 FILE2 DESCRIPTION
  if cmp -s "$1" "$2"; then pass; else fail "$3: $1 and $2 differ"; fi
}

# start_daemon NAME ARGS...: cascaded on a free port (tried at random until
# one binds) and NAME.sock; sets PORT, SOCK, DPID.  Readiness: a TCP connect.
start_daemon() {
  local name=$1 try k
  shift
  SOCK=$TMP/$name.sock
  for try in 1 2 3 4 5 6 7 8 9 10; do
    PORT=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    "$DAEMON" --port "$PORT" --unixsocket "$SOCK" --dram 64m \
      --loglevel warning "$@" >"$name.log" 2>&1 &
    DPID=$!
    for k in $(seq 1 100); do
      if ! kill -0 "$DPID" 2>/dev/null; then break; fi
      if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && [ -S "$SOCK" ]
      then
        PIDS+=("$DPID")
        return 0
      fi
      sleep 0.1
    done
    kill -KILL "$DPID" 2>/dev/null
    wait "$DPID" 2>/dev/null
  done
  echo "cannot start $DAEMON:" >&2
  cat "$name.log" >&2
  exit 1
}

# stop_daemon: SIGTERM, which must end it with exit 0.
stop_daemon() {
  local rc
  kill -TERM "$DPID"
  wait "$DPID"
  rc=$?
  if [ "$rc" -eq 0 ]; then pass; else
    fail "cascaded exited $rc after SIGTERM"
    tail -5 "$1.log" >&2
  fi
  if grep -Eq 'Sanitizer|runtime error:' "$1.log"; then
    fail "cascaded: sanitizer report"
    head -20 "$1.log" >&2
  else
    pass
  fi
  local keep=() p
  for p in "${PIDS[@]}"; do [ "$p" = "$DPID" ] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

# ---- no daemon ----------------------------------------------------------------

run 0 "--help" "$CLI" --help
cp out help.txt
for w in put get del exists stat ping; do
  expect help.txt "^  $w " "cascade --help lists $w"
  run 0 "$w --help" "$CLI" "$w" --help
  expect out "^Usage: cascade $w" "$w --help"
  expect out "--unix PATH" "$w --help names the connection options"
  run 0 "help $w" "$CLI" help "$w"
done
run 2 "unknown option" "$CLI" get --bogus k
run 2 "no key" "$CLI" get
run 2 "bad port" "$CLI" --port 0 ping
expect err "--port 0: expected a TCP port" "bad port message"
run 2 "bad port after the command" "$CLI" ping --port 70000
run 2 "bad priority" "$CLI" put --priority urgent k /dev/null
run 2 "bad ttl" "$CLI" put --ttl 0 k /dev/null
run 2 "--nx with --xx" "$CLI" put --nx --xx k /dev/null
run 2 "engine settings" "$CLI" --dram 1m ping
run 2 "connection option on demo" "$CLI" --port 6380 demo
run 2 "ping takes no argument" "$CLI" ping extra
run 2 "bad CASCADE_PORT" env CASCADE_PORT=x "$CLI" ping
run 2 "--user without a password" "$CLI" --user ns ping

# ---- a daemon without passwords ---------------------------------------------

start_daemon plain
T=(--port "$PORT")
U=(--unix "$SOCK")

run 0 "ping over TCP" "$CLI" "${T[@]}" ping
expect out "^PONG " "ping over TCP"
run 0 "ping over the Unix socket" "$CLI" "${U[@]}" ping
expect out "^PONG \($SOCK, " "ping over the Unix socket"
run 0 "--unix wins over --host/--port" \
  "$CLI" --host 192.0.2.1 --port 1 --unix "$SOCK" ping
run 0 "CASCADE_PORT" env CASCADE_PORT="$PORT" "$CLI" ping
run 0 "CASCADE_HOST and CASCADE_PORT" \
  env CASCADE_HOST=localhost CASCADE_PORT="$PORT" "$CLI" ping
run 0 "CASCADE_UNIX" env CASCADE_UNIX="$SOCK" "$CLI" ping
run 0 "--port over CASCADE_UNIX" \
  env CASCADE_UNIX=/nonexistent "$CLI" --port "$PORT" ping

# Binary values: every byte value, NULs, CR LF, sizes around buffer edges.
head -c 1048583 /dev/urandom >big.bin
printf 'a\0b\r\nc\0\0\377' >small.bin
: >empty.bin
for v in big small empty; do
  run 0 "put $v from a file" "$CLI" "${T[@]}" put "key:$v" "$v.bin"
  run 0 "get $v -o" "$CLI" "${U[@]}" get "key:$v" -o "$v.got"
  same "$v.bin" "$v.got" "get -o of $v"
  run 0 "get $v to stdout" "$CLI" "${T[@]}" get "key:$v"
  same "$v.bin" out "get to stdout of $v"
done
head -c 8388608 /dev/urandom >huge.bin
run 0 "put 8 MiB from stdin" "$CLI" "${T[@]}" put key:huge <huge.bin
run 0 "get 8 MiB" "$CLI" "${T[@]}" get --output=huge.got key:huge
same huge.bin huge.got "8 MiB through stdin"
printf 'via dash' >dash.in
run 0 "put - (stdin)" "$CLI" "${U[@]}" put key:dash - <dash.in
run 0 "get key:dash" "$CLI" "${U[@]}" get key:dash
same dash.in out "put - (stdin)"
run 0 "overwrite" "$CLI" "${T[@]}" put key:small big.bin
run 0 "get overwritten" "$CLI" "${T[@]}" get key:small -o over.got
same big.bin over.got "overwritten value"
printf 'odd\n' >odd.in
run 0 "odd key names after --" \
  "$CLI" "${T[@]}" put -- "-dash key with spaces" - <odd.in
run 0 "get odd key" "$CLI" "${T[@]}" get -- "-dash key with spaces"
expect out "^odd$" "odd key's value"

# Missing keys.
run 1 "get missing key" "$CLI" "${T[@]}" get no:such:key
expect err "^cascade: get: no:such:key: no such key$" "missing key message"
[ -s out ] && fail "get of a missing key wrote to stdout" || pass
run 1 "get missing key -o" "$CLI" "${T[@]}" get no:such:key -o missing.got
[ -e missing.got ] && fail "get -o of a missing key created the file" || pass

# exists, del.
run 0 "exists all" "$CLI" "${T[@]}" exists key:big key:empty
expect out "^2$" "exists count"
run 1 "exists some" "$CLI" "${T[@]}" exists key:big no:such:key
expect out "^1$" "exists count, one missing"
run 0 "del" "$CLI" "${U[@]}" del key:big no:such:key key:empty
expect out "^2$" "del count"
run 1 "exists after del" "$CLI" "${T[@]}" exists key:big
expect out "^0$" "exists after del"
run 1 "get after del" "$CLI" "${T[@]}" get key:big
run 0 "del of nothing" "$CLI" "${T[@]}" del key:big
expect out "^0$" "del of nothing"

# put options: prefix chains, priority, NX/XX, TTL.
printf 'block0' >b0
printf 'block1' >b1
run 0 "put --prefix" "$CLI" "${T[@]}" put --prefix --priority high chain:0 b0
run 0 "put --parent" "$CLI" "${T[@]}" put --prefix --parent chain:0 \
  --priority=low chain:1 b1
run 0 "get chained" "$CLI" "${T[@]}" get chain:1
same b1 out "chained block"
run 1 "put --nx on an existing key" "$CLI" "${T[@]}" put --nx chain:0 b1
expect err "not stored: it exists" "--nx message"
run 0 "put --xx on an existing key" "$CLI" "${T[@]}" put --xx chain:0 b1
run 1 "put --xx on a missing key" "$CLI" "${T[@]}" put --xx no:such:key b1
run 0 "put --nx on a missing key" "$CLI" "${T[@]}" put --nx new:key b1
run 0 "put --ttl" "$CLI" "${T[@]}" put --ttl 300 ttl:key b0
run 0 "get before the TTL" "$CLI" "${T[@]}" get ttl:key
sleep 1
run 1 "get after the TTL" "$CLI" "${T[@]}" get ttl:key
run 1 "put of a missing file" "$CLI" "${T[@]}" put k no/such/file
expect err "^cascade: put: no/such/file: No such file" "missing file message"

# Error replies are printed as they came.
run 1 "empty key" "$CLI" "${T[@]}" put "" b0
expect err "^cascade: put: ERR empty keys are not supported$" "error reply"

# stat.
run 0 "stat" "$CLI" "${T[@]}" stat
for w in '^server' '^memory' '^keys' '^tier +blocks +bytes +capacity +hits' \
  '^dram +[0-9,]+ ' 'clients +[0-9]' 'in this namespace +[0-9]' \
  'keyspace misses +[0-9]' 'dram capacity +64 MiB' 'evicted +[0-9]'; do
  expect out "$w" "stat"
done
run 0 "stat --raw" "$CLI" "${U[@]}" stat --raw
expect out "^# Server" "stat --raw"
expect out "^dram_blocks:" "stat --raw"

stop_daemon plain
run 1 "connection refused" "$CLI" "${T[@]}" ping
expect err "^cascade: cannot connect to 127\.0\.0\.1:$PORT: Connection refused \(is cascaded running\?\)$" \
  "connection refused message"
run 1 "no socket" "$CLI" --unix "$TMP/none.sock" get k
expect err "^cascade: cannot connect to $TMP/none.sock: .*\(is cascaded running\?\)$" \
  "missing socket message"

# ---- a daemon with passwords --------------------------------------------------

start_daemon auth --requirepass s3cret --namespace tenant t3nant
T=(--port "$PORT")
run 1 "no password" "$CLI" "${T[@]}" ping
expect err "NOAUTH" "no password: the daemon's error"
run 1 "wrong password" "$CLI" "${T[@]}" --password nope ping
expect err "^cascade: ping: AUTH: WRONGPASS" "wrong password"
run 0 "--password" "$CLI" "${T[@]}" --password s3cret ping
run 0 "CASCADE_PASSWORD" env CASCADE_PASSWORD=s3cret "$CLI" "${T[@]}" ping
run 0 "put as default" "$CLI" "${T[@]}" --password s3cret put shared small.bin
run 0 "get as default" "$CLI" --unix "$SOCK" --password=s3cret get shared
same small.bin out "value through AUTH"
run 1 "wrong namespace password" \
  "$CLI" "${T[@]}" --user tenant --password s3cret get shared
run 1 "the namespace cannot see default's key" \
  "$CLI" "${T[@]}" --user tenant --password t3nant get shared
expect err "no such key" "namespace isolation"
run 0 "put in the namespace" \
  env CASCADE_USER=tenant CASCADE_PASSWORD=t3nant "$CLI" "${T[@]}" put mine b0
run 0 "exists in the namespace" \
  "$CLI" "${T[@]}" --user tenant --password t3nant exists mine
run 1 "default cannot see it" "$CLI" "${T[@]}" --password s3cret exists mine
run 0 "stat in the namespace" \
  "$CLI" "${T[@]}" --user tenant --password t3nant stat
expect out "in this namespace +1 " "stat counts the namespace's keys"
stop_daemon auth

if [ "$FAILS" -ne 0 ]; then
  echo "test_cli_client: $FAILS of $CHECKS checks failed" >&2
  exit 1
fi
echo "test_cli_client: all $CHECKS checks passed"
