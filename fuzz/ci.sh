#!/usr/bin/env bash
# Fuzz smoke test: runs every target for ${FUZZ_SECONDS:-30} seconds on the stable toolchain
# (no sanitizer). Any crash, failed property or timeout makes the script fail.
#
# Seeds: the committed corpus/<target>/ plus the real AWS samples when ../shared is present
# (seed-shared.sh). New inputs go to a temporary directory, so the checkout is not modified.
set -euo pipefail
cd "$(dirname "$0")"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
./seed-shared.sh

# The harness's own tests, e.g. that the structured target's default blob is accepted.
cargo test --locked --lib

seconds="${FUZZ_SECONDS:-30}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for target in $(cargo fuzz list); do
    echo "=== fuzz $target for $seconds s"
    mkdir -p "$work/$target"
    cargo fuzz run --sanitizer none "$target" "$work/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1
done
echo "fuzz smoke test passed"
