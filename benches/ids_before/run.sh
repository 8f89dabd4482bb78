#!/bin/sh
# Runs benches/ids.rs with the version before issue 11 side by side:
#   benches/ids_before/run.sh [criterion args]
# The old version is extracted from git into target/annals-before, its
# package version renamed so that Cargo can hold both.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
before=7ce1d79
rm -rf "$root/target/annals-before"
mkdir -p "$root/target/annals-before"
git -C "$root" archive "$before" | tar -x -C "$root/target/annals-before"
sed -i 's/^version = "0.1.0"/version = "0.1.0-before"/' "$root/target/annals-before/Cargo.toml"
# Its bench data goes where the main bench's does, never to tmpfs.
export ANNALS_BENCH_DIR="${ANNALS_BENCH_DIR:-$root/target/annals-bench}"
cd "$here"
exec cargo bench --target-dir "$root/target/ids-before" --bench ids -- "$@"
