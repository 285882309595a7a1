#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 30; run it for 900 or more
# by hand before a release). Needs the nightly toolchain; installs cargo-fuzz
# if it is missing. Fails on the first crash, leaving the input in
# fuzz/artifacts/<target>/.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../fuzz"

seconds=${1:-30}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(handshake frame protocol connection)

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "==> installing cargo-fuzz"
    cargo install cargo-fuzz --locked --quiet
fi

for target in "${targets[@]}"; do
    echo "==> fuzzing $target for ${seconds}s"
    # The seeds in corpus/<target>/seed-* stay; what the run finds is kept
    # beside them (ignored by git) for the next run.
    cargo +nightly fuzz run "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -max_len=4096 -rss_limit_mb=1024 -print_final_stats=1 2>&1 |
        grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)|ERROR|panicked|SUMMARY' || true
    if [ -n "$(ls -A "artifacts/$target" 2>/dev/null)" ]; then
        echo "fuzz target $target failed: see fuzz/artifacts/$target/" >&2
        exit 1
    fi
done
echo "==> fuzzing passed: ${targets[*]}"
