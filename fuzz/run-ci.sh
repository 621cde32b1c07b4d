#!/usr/bin/env bash
# Builds every fuzz target, writes the seed corpus, and runs each target for a bounded
# time. Usage: fuzz/run-ci.sh [seconds per target, default 30]. Exits non-zero on a crash
# (libFuzzer leaves the input in fuzz/artifacts/<target>/).
set -euo pipefail

SECONDS_PER_TARGET="${1:-30}"
cd "$(dirname "$0")"

# cargo-fuzz needs nightly features; with a stable toolchain they are unlocked this way.
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

# -O: release build without cargo-fuzz's blanket -Cdebug-assertions (tls_codec 0.5 has a
# debug_assert that fires on truncated input); fuzz/Cargo.toml turns debug assertions and
# overflow checks back on for every other crate. -s none: the library forbids unsafe code,
# so no sanitizer; more executions per second instead.
FLAGS=(-O -s none)

cargo fuzz build "${FLAGS[@]}"

# Seeds: real messages of a deterministic fixture group (see src/lib.rs), into corpus/<t>/.
cargo run --release --quiet --example seeds -- corpus

status=0
for target in $(cargo fuzz list); do
    echo "=== $target (${SECONDS_PER_TARGET}s)"
    mkdir -p "corpus/$target"
    if ! cargo fuzz run "${FLAGS[@]}" "$target" "corpus/$target" -- \
        -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1; then
        echo "!!! $target crashed; reproducer in fuzz/artifacts/$target/"
        status=1
    fi
done
exit $status
