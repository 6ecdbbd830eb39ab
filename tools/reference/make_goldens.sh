#!/usr/bin/env bash
# Makes every golden listed in tools/reference/goldens.txt: writes the checkpoint with `ossrun synth`, then runs
# make_golden.py (transformers, float32, eager attention) on it. Needs python3 with torch and transformers.
#   make_goldens.sh OSSRUN_BINARY OUT_DIR     -> OUT_DIR/NAME/golden.json
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: make_goldens.sh OSSRUN_BINARY OUT_DIR" >&2; exit 2; }
ossrun=$1 out=$2
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
grep -v -e '^#' -e '^[[:space:]]*$' "$here/goldens.txt" | while read -r name args; do
  mkdir -p "$out/$name"
  # shellcheck disable=SC2086  # the flags are words
  "$ossrun" synth "$work/$name" --force $args >/dev/null
  python3 "$here/make_golden.py" --checkpoint "$work/$name" --synth-args "$args" --out "$out/$name/golden.json"
done
