#!/usr/bin/env bash
# A soak run: CLIENTS clients connect, subscribe, send, unsubscribe and leave
# at random for DURATION seconds while the hub publishes RATE sequence-
# numbered messages a second. Reports (and asserts) zero lost messages,
# correct echoes, no client cut as slow, the thread count back to its
# baseline, and VmRSS before, at its peak and after. Not part of
# `cargo test` or CI.
#
#   scripts/soak.sh [DURATION=300] [CLIENTS=200] [RATE=100]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

duration=${1:-300}
clients=${2:-200}
rate=${3:-100}

SOAK_SECS=$duration SOAK_CLIENTS=$clients SOAK_RATE=$rate \
    cargo test --release --test soak -- --ignored --nocapture
