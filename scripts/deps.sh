#!/usr/bin/env bash
# deps.sh - install the Debian packages Cascade needs, and only the missing ones.
#
#   scripts/deps.sh [build|test|sanitize|clang|format|bench|all]   (default: build)
#
# Groups (each includes the ones it names):
#   build     compiler, cmake, pkg-config, OpenSSL, xxHash, liburing, json-c,
#             hiredis, LMDB, HDF5 and libmemcached headers
#   test      build + cmocka, redis-tools, redis-server, python3-redis,
#             memcached
#   sanitize  test + clang and clang's sanitizer runtimes (gcc's come with gcc)
#   clang     test + clang (the clang -Werror build compiles the tests too)
#   format    clang-format
#   bench     build + BENCH_PKGS below
#   all       everything above
#
# Checks each package with dpkg-query; when all are installed it prints nothing
# and does not touch apt.  Otherwise it runs `apt-get update` once and installs
# the missing ones.  As root it calls apt-get directly, else through sudo;
# without sudo it prints the command to run and fails.
# CASCADE_SKIP_DEPS=1 skips everything (for machines set up by hand).
set -euo pipefail

BUILD_PKGS=(build-essential cmake pkg-config libssl-dev libxxhash-dev liburing-dev
            libjson-c-dev libhiredis-dev liblmdb-dev libhdf5-dev libmemcached-dev)
# The daemon's tests talk to it with clients nobody here wrote: redis-cli and
# redis-benchmark (redis-tools), redis-py for /usr/bin/python3, hiredis (in
# build), and compare replies with a real redis-server.
TEST_PKGS=(libcmocka-dev redis-tools redis-server python3-redis memcached)
CLANG_PKGS=(clang)
FORMAT_PKGS=(clang-format)

# clang's sanitizer runtimes are packaged per clang major version
# (Debian 12: clang 14).
clang_major=14
if command -v clang >/dev/null 2>&1; then
  v=$(clang -dumpversion 2>/dev/null || true)
  [[ ${v%%.*} =~ ^[0-9]+$ ]] && clang_major=${v%%.*}
fi
SANITIZE_PKGS=(clang "libclang-rt-${clang_major}-dev")

# ---- bench: packages the benchmarks need; extend this list ------------------
# (e.g. python3-matplotlib or gnuplot for plots, redis-server or libhiredis-dev
# and libhdf5-dev for baselines)
# gnuplot-nox: `cascade replay --compare --plot FILE.png`.
# redis-server: the peer of `cascade bench server`.
BENCH_PKGS=(fio gnuplot-nox redis-server memcached)
# -------------------------------------------------------------------------------

group=${1:-build}
wanted=()
case "$group" in
  build) wanted=("${BUILD_PKGS[@]}") ;;
  test) wanted=("${BUILD_PKGS[@]}" "${TEST_PKGS[@]}") ;;
  sanitize) wanted=("${BUILD_PKGS[@]}" "${TEST_PKGS[@]}" "${SANITIZE_PKGS[@]}") ;;
  clang) wanted=("${BUILD_PKGS[@]}" "${TEST_PKGS[@]}" "${CLANG_PKGS[@]}") ;;
  format) wanted=("${FORMAT_PKGS[@]}") ;;
  bench) wanted=("${BUILD_PKGS[@]}" ${BENCH_PKGS[@]+"${BENCH_PKGS[@]}"}) ;;
  all)
    wanted=("${BUILD_PKGS[@]}" "${TEST_PKGS[@]}" "${SANITIZE_PKGS[@]}"
            "${CLANG_PKGS[@]}" "${FORMAT_PKGS[@]}"
            ${BENCH_PKGS[@]+"${BENCH_PKGS[@]}"})
    ;;
  -h | --help)
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *)
    echo "deps.sh: unknown group '$group' (build|test|sanitize|clang|format|bench|all)" >&2
    exit 2
    ;;
esac

if [[ ${CASCADE_SKIP_DEPS:-0} == 1 ]]; then
  exit 0
fi

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "deps.sh: not a Debian-based system; install the equivalents of:" >&2
  echo "  ${wanted[*]}" >&2
  exit 0
fi

missing=()
declare -A seen=()
for pkg in "${wanted[@]}"; do
  [[ -n ${seen[$pkg]:-} ]] && continue
  seen[$pkg]=1
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ $status == "install ok installed" ]] || missing+=("$pkg")
done

((${#missing[@]} == 0)) && exit 0

apt_install=(apt-get install -y --no-install-recommends
             -o DPkg::Lock::Timeout=300 "${missing[@]}")
if [[ $(id -u) -eq 0 ]]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1; then
  # Without a terminal there is nobody to type a password: fail, don't wait.
  if [[ -t 0 ]]; then sudo=(sudo); else sudo=(sudo -n); fi
else
  echo "deps.sh: missing Debian packages: ${missing[*]}" >&2
  echo "deps.sh: not root and no sudo; as root, run:" >&2
  echo "  apt-get update && DEBIAN_FRONTEND=noninteractive ${apt_install[*]}" >&2
  exit 1
fi

echo "deps.sh: installing missing packages: ${missing[*]}" >&2
if ! "${sudo[@]}" apt-get update -qq -o DPkg::Lock::Timeout=300 ||
   ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive "${apt_install[@]}"; then
  echo "deps.sh: installing ${missing[*]} failed; run by hand:" >&2
  echo "  ${sudo[*]} apt-get update && ${sudo[*]} env DEBIAN_FRONTEND=noninteractive ${apt_install[*]}" >&2
  exit 1
fi

for pkg in "${missing[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  if [[ $status != "install ok installed" ]]; then
    echo "deps.sh: $pkg is still not installed" >&2
    exit 1
  fi
done
