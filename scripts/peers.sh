#!/usr/bin/env bash
# peers.sh - install the Python peers of `cascade bench suite` (Mooncake
# Store, LMCache) from PyPI, each into its own virtual environment under the
# peers directory, where the suite looks for them (src/cli/suite_peers.c,
# bench/peers/README.md).
#
#   scripts/peers.sh          install what PEERS names and is missing
#
#   CASCADE_PEERS  the peers directory [.peers]
#   PEERS          which: "mooncake lmcache" [both]; empty: none
#
# mooncake -> $CASCADE_PEERS/venv:     mooncake-transfer-engine-non-cuda, numpy
# lmcache  -> $CASCADE_PEERS/venv-lmc: lmcache (pulls PyPI's CUDA torch, about
#             6 GB; it runs without a GPU on its CPU stub device)
# A peer whose environment already imports it is left alone.  A failed
# install is reported and the others go on; the suite then skips that peer.
set -uo pipefail

dir=${CASCADE_PEERS:-.peers}
peers=${PEERS-mooncake lmcache}
py=${PYTHON:-python3}
status=0

have_venv() {
  "$py" -c 'import venv, ensurepip' >/dev/null 2>&1
}

install() { # name venv module packages...
  local name=$1 venv=$dir/$2 mod=$3
  shift 3
  if [[ -x $venv/bin/python ]] && "$venv/bin/python" -c "import $mod" \
      >/dev/null 2>&1; then
    echo "peers.sh: $name: installed ($venv)"
    return 0
  fi
  echo "peers.sh: $name: installing $* into $venv (from PyPI)"
  if ! "$py" -m venv "$venv" || ! "$venv/bin/pip" install --quiet \
      --disable-pip-version-check "$@"; then
    echo "peers.sh: $name: install failed; the suite will skip it" >&2
    status=1
    return 1
  fi
}

[[ -z $peers ]] && exit 0
if ! have_venv; then
  # Debian's python3 has venv in a package of its own
  if [[ $py == python3 && -x /usr/bin/apt-get && $(id -u) == 0 ]]; then
    apt-get install -y -q python3-venv >/dev/null || true
  fi
  if ! have_venv; then
    echo "peers.sh: $py has no venv module (Debian: apt-get install" \
         "python3-venv); peers not installed" >&2
    exit 1
  fi
fi
mkdir -p "$dir"
for p in $peers; do
  case $p in
    mooncake) install mooncake venv mooncake.store \
                mooncake-transfer-engine-non-cuda numpy ;;
    lmcache) install lmcache venv-lmc lmcache lmcache ;;
    *) echo "peers.sh: unknown peer '$p' (mooncake, lmcache)" >&2; status=2 ;;
  esac
done
exit $status
