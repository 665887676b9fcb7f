#!/bin/sh
# test_bench_report.sh - `cascade bench report` on hand-made suite results.
#
#   tests/cli/test_bench_report.sh PATH/TO/cascade
#
# Writes suite results in the schema of `cascade bench suite` (src/cli/
# suite.c json_result, copied from a real --quick run) into a temporary
# directory: hot-read of lmdb, cascade and redis (ok), memcached (failed),
# an older lmdb result with another GB/s that must not be used, and junk
# (JSON lines of bench dram, a file that is not JSON).  Then checks the
# Markdown (every system, the GB/s values in descending order, the ratio to
# the best baseline, the latency, the failed row, the junk skipped), --out,
# the PNG files (signature) when gnuplot is on $PATH, the run without
# gnuplot on $PATH (Markdown complete, exit 0), a gnuplot that fails (exit
# 1), and the usage and input errors.  No benchmark is run.  Exit 0 pass,
# 1 fail, 77 skipped (a tool missing).
set -u

if [ $# -ne 1 ]; then
  echo "usage: $0 PATH/TO/cascade" >&2
  exit 2
fi
CLI=$1
if [ ! -x "$CLI" ]; then
  echo "SKIP: $CLI is not an executable" >&2
  exit 77
fi
for t in awk cmp grep head mktemp od tr; do
  if ! command -v "$t" >/dev/null 2>&1; then
    echo "SKIP: $t not found" >&2
    exit 77
  fi
done
case $CLI in /*) ;; *) CLI=$PWD/$CLI ;; esac

TMP=$(mktemp -d "${TMPDIR:-/tmp}/cascade-report-test.XXXXXX") || exit 77
trap 'rm -rf "$TMP"' EXIT
trap 'exit 1' INT TERM
R=$TMP/results
mkdir "$R" "$TMP/plots" "$TMP/none" "$TMP/junkonly" "$TMP/fakebin" || exit 1

FAILS=0
CHECKS=0
pass() { CHECKS=$((CHECKS + 1)); }
fail() {
  CHECKS=$((CHECKS + 1))
  FAILS=$((FAILS + 1))
  echo "FAIL: $*" >&2
}
# check DESCRIPTION COMMAND...: pass if COMMAND succeeds
check() {
  what=$1
  shift
  if "$@"; then pass; else fail "$what"; fi
}

# result FILE SYSTEM KIND VERSION STAMP STATUS REASON GBPS OPS P50 P90 P99
#        P999 MAX: one suite result as `cascade bench suite` writes it
result() {
  if [ "$6" = ok ]; then
    res=$(printf ',"result":{"seconds":0.001118,"bytes":8388608,"blocks":32,"gbps":%s,"ops_per_sec":%s,"calls":4,"errors":0,"timing":"one span, first get to last get; every byte compared after it","latency_ns":{"per":"call of up to 8 blocks","p50":%s,"p90":%s,"p99":%s,"p999":%s,"max":%s,"mean":%s}}' \
      "$8" "$9" "${10}" "${11}" "${12}" "${13}" "${14}" "${10}")
  else
    res=',"result":{"seconds":0.000000,"bytes":0,"blocks":0,"gbps":null,"ops_per_sec":null,"calls":1,"errors":1,"timing":"one span, first get to last get; every byte compared after it","latency_ns":{"per":"call of up to 8 blocks","p50":0,"p90":0,"p99":0,"p999":0,"max":0,"mean":0}}'
  fi
  printf '{"bench":"suite","system":"%s","kind":"%s","version":"%s","workload":"hot-read","nodes":1,"timestamp":"%s","status":"%s","reason":"%s","config":{"block":262144,"blocks":32,"total_bytes":8388608,"threads":1,"batch":8,"repeat":1,"seed":7161131753168725299,"model":null,"quick":true,"dir":"/var/tmp/cascade-bench-suite.Tn9ypZ","cascaded":"/usr/bin/cascaded","keys":"blk:%%016llx","data":"windows of a seeded splitmix64 pool, distinct per block"},"machine":{"host":"vm","cpu":"AMD EPYC","cores":2,"memory":25276510208,"l3":33554432,"kernel":"Linux 6.18.44 x86_64","thp":"always [madvise] never","fs":"ext4","device":"/dev/vda"}%s}\n' \
    "$2" "$3" "$4" "$5" "$6" "$7" "$res" >"$R/$1"
}

S=20261123T173702Z
result "lmdb_hot-read_1n_$S.json" lmdb disk 0.9.24 $S ok "" \
  7.501234 28614.2 234300 300100 336400 336400 336400
result "cascade_hot-read_1n_$S.json" cascade tiered "libcascade 0.1.0" $S ok \
  "" 6.267000 23907.0 286100 350000 392800 392800 392800
result "redis_hot-read_1n_$S.json" redis memory "redis-server 7.0.15" $S ok \
  "" 0.385000 1468.4 3100000 9000000 11100000 11100000 11100000
result "memcached_hot-read_1n_$S.json" memcached memory 1.6.18 $S failed \
  "memcached: get blk:0000000000000003: wrong byte at 17"
# older: must lose to the newer lmdb result above
result "lmdb_hot-read_1n_20251101T000000Z.json" lmdb disk 0.9.24 \
  20251101T000000Z ok "" 9.999000 99999.0 1000 2000 3000 4000 5000
# junk: JSON lines of another bench, and not JSON at all
printf '{"bench":"dram","size":4096,"gbps":1.5}\n{"bench":"dram","size":1048576,"gbps":9.5}\n' \
  >"$R/bench_dram.json"
printf 'not json\n' >"$R/notes.json"
printf 'not a result file\n' >"$R/README"
cp "$R/bench_dram.json" "$R/notes.json" "$TMP/junkonly/"

# ---- Markdown, plots ----------------------------------------------------------

"$CLI" bench report --results "$R" --plots "$TMP/plots" >"$TMP/md" \
  2>"$TMP/err"
rc=$?
check "report exits 0 (got $rc)" [ "$rc" -eq 0 ]
for s in lmdb cascade redis memcached; do
  check "Markdown has a row of $s" grep -q "^| $s | 256 KiB |" "$TMP/md"
done
check "Markdown has a hot-read table" grep -q '^## hot-read$' "$TMP/md"
# the hot-read rows: system and GB/s, in table order
rows=$(awk -F' *[|] *' '/^## hot-read/ { t = 1; next }
  /^## / { t = 0 }
  t && /^[|] / && $2 != "system" && $2 !~ /^:?-/ { printf "%s=%s ", $2, $4 }' \
  "$TMP/md")
want="lmdb=7.501 cascade=6.267 redis=0.385 memcached=FAILED "
check "rows by GB/s descending: got '$rows', want '$want'" \
  [ "$rows" = "$want" ]
check "cascade against the best baseline" \
  grep -q '^| cascade | 256 KiB | 6.267 | 23907 | 286.1 us | 392.8 us | 0.84x lmdb |$' "$TMP/md"
check "lmdb is the best baseline" \
  grep -q '^| lmdb | 256 KiB | 7.501 | 28614 | 234.3 us | 336.4 us | 1.00x lmdb |$' "$TMP/md"
check "redis row" \
  grep -q '^| redis | 256 KiB | 0.385 | 1468 | 3.1 ms | 11.1 ms | 0.05x lmdb |$' "$TMP/md"
check "failed row shows its reason" \
  grep -q '^| memcached | 256 KiB | FAILED | .*wrong byte at 17 |$' "$TMP/md"
check "the older lmdb result is not used" \
  sh -c '! grep -q "9.999" "$1"' sh "$TMP/md"
check "header has the machine" grep -q '^- Machine: AMD EPYC, 2 cores' "$TMP/md"
check "header has the config" \
  grep -q '^- Config: block 256 KiB; 32 blocks (8 MiB) per system; 1 thread; 8 blocks per call; repeat 1' "$TMP/md"
check "header has the versions" grep -q 'redis: redis-server 7.0.15' "$TMP/md"
check "bench_dram.json skipped with a note" \
  grep -q 'skipped .*bench_dram.json' "$TMP/err"
check "notes.json skipped with a note" grep -q 'skipped .*notes.json' "$TMP/err"
check "the older result named" \
  grep -q 'not used lmdb_hot-read_1n_20251101T000000Z.json' "$TMP/err"
check "README not read (not *.json)" sh -c '! grep -q README "$1"' sh "$TMP/err"

if command -v gnuplot >/dev/null 2>&1; then
  for p in throughput.png latency_hot-read.png; do
    f=$TMP/plots/$p
    sig=$(head -c 8 "$f" 2>/dev/null | od -An -tx1 | tr -d ' \n')
    check "$p is a PNG (signature '$sig')" [ "$sig" = 89504e470d0a1a0a ]
    check "$p named on stderr" grep -q "wrote $f" "$TMP/err"
  done
  check "no PNG in the results directory with --plots" \
    sh -c '! ls "$1"/*.png >/dev/null 2>&1' sh "$R"
else
  echo "note: gnuplot not installed, PNG checks not run" >&2
fi

# --out FILE and --no-plots: the same Markdown, nothing on stdout
"$CLI" bench report --results "$R" --out "$TMP/out.md" --no-plots \
  >"$TMP/stdout2" 2>/dev/null
rc=$?
check "--out exits 0 (got $rc)" [ "$rc" -eq 0 ]
check "--out writes the same Markdown" cmp -s "$TMP/md" "$TMP/out.md"
check "--out: nothing on stdout" [ ! -s "$TMP/stdout2" ]
check "--no-plots: no PNG" sh -c '! ls "$1"/*.png >/dev/null 2>&1' sh "$R"

# no gnuplot on $PATH: the Markdown still, a note, exit 0
PATH=$TMP/none "$CLI" bench report --results "$R" >"$TMP/md3" 2>"$TMP/err3"
rc=$?
check "without gnuplot exits 0 (got $rc)" [ "$rc" -eq 0 ]
check "without gnuplot: the same Markdown" cmp -s "$TMP/md" "$TMP/md3"
check "without gnuplot: a note" grep -q 'gnuplot not found' "$TMP/err3"
check "without gnuplot: no PNG" sh -c '! ls "$1"/*.png >/dev/null 2>&1' sh "$R"

# a gnuplot that fails: exit 1, the Markdown still written
printf '#!/bin/sh\necho "fake gnuplot: failing" >&2\nexit 3\n' \
  >"$TMP/fakebin/gnuplot"
chmod +x "$TMP/fakebin/gnuplot"
mkdir "$TMP/tmpdir" # the scripts it keeps go there
PATH=$TMP/fakebin TMPDIR=$TMP/tmpdir "$CLI" bench report --results "$R" \
  --plots "$TMP/plots2" >"$TMP/md4" 2>"$TMP/err4"
rc=$?
check "failing gnuplot exits 1 (got $rc)" [ "$rc" -eq 1 ]
check "failing gnuplot: the Markdown still written" cmp -s "$TMP/md" "$TMP/md4"
check "failing gnuplot: its status named" grep -q 'exit status 3' "$TMP/err4"
check "failing gnuplot: the scripts kept" \
  sh -c 'ls "$1"/cascade-report.*/*.gp >/dev/null 2>&1' sh "$TMP/tmpdir"

# errors
"$CLI" bench report --help >"$TMP/help" 2>&1
rc=$?
check "--help exits 0 (got $rc)" [ "$rc" -eq 0 ]
check "--help prints the usage" grep -q '^Usage: cascade bench report' \
  "$TMP/help"
"$CLI" bench report --bogus >/dev/null 2>&1
rc=$?
check "unknown option exits 2 (got $rc)" [ "$rc" -eq 2 ]
"$CLI" bench report --results >/dev/null 2>&1
rc=$?
check "--results without a value exits 2 (got $rc)" [ "$rc" -eq 2 ]
"$CLI" bench report --results "$TMP/missing" >/dev/null 2>&1
rc=$?
check "a missing directory exits 1 (got $rc)" [ "$rc" -eq 1 ]
"$CLI" bench report --results "$TMP/junkonly" --no-plots >/dev/null 2>&1
rc=$?
check "no suite result exits 1 (got $rc)" [ "$rc" -eq 1 ]

echo "$CHECKS checks, $FAILS failed"
[ "$FAILS" -eq 0 ]
