#!/usr/bin/env bash
# The clean-start acceptance: for PostgreSQL, Redis, RabbitMQ, a SnapshotFixture, a StackFixture
# and a plugin fixture, a test that dirties the shared fixture and then panics, and tests that
# assert the exact baseline (named to run before and after it), pass under `cargo test` (threads;
# the fixtures are shared per run, which is the test binary's process here) and under
# `cargo nextest run` (a process per test; the fixtures are shared by the whole run), N times in
# a row (default 10). Prints one line per binary and run; exits 1 if any run failed, keeping the
# failed run's whole output in target/clean-start/.
#
#   bash crates/seaworthy-testkit/clean-start.sh [N]
set -uo pipefail
cd "$(dirname "$0")/../.."
runs="${1:-10}"
packages=(-p seaworthy -p seaworthy-postgres -p seaworthy-redis -p seaworthy-rabbitmq -p seaworthy-plugin)
cargo test -q "${packages[@]}" --test clean_start --no-run || exit 1
failed=0
mkdir -p target/clean-start
for i in $(seq 1 "$runs"); do
    out="$(cargo test -q "${packages[@]}" --test clean_start 2>&1)" || {
        failed=1
        printf '%s\n' "$out" >"target/clean-start/cargo-test-run-$i.log"
        tail -n 30 <<<"$out" | sed "s/^/cargo test  run $i (failed): /"
        echo "cargo test  run $i: whole output in target/clean-start/cargo-test-run-$i.log"
    }
    grep -E "^test result|panicked" <<<"$out" | sed "s/^/cargo test  run $i: /"
    if ! cargo nextest --version >/dev/null 2>&1; then
        echo "cargo-nextest is not installed: skipping the nextest runs" >&2
        continue
    fi
    out="$(cargo nextest run --no-fail-fast "${packages[@]}" -E 'binary(clean_start)' 2>&1)" || {
        failed=1
        printf '%s\n' "$out" >"target/clean-start/nextest-run-$i.log"
        echo "nextest     run $i: whole output in target/clean-start/nextest-run-$i.log"
    }
    grep -E "^\s+Summary|(FAIL|SIGSEGV|SIGABRT|TIMEOUT) \[" <<<"$out" | sed "s/^/nextest     run $i: /"
done
exit "$failed"
