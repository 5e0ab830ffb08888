#!/usr/bin/env bash
# Runs scripts/valgrind-exercise.js, and the runtime smoke test on the poll-thread backend,
# under valgrind memcheck and reports invalid reads/writes and
# frees in the addon. V8's JIT and GC confuse memcheck's definedness tracking, so undefined-value
# errors are off; invalid accesses, bad frees and definite leaks are what this checks (Node's own
# inspector thread leaves a "possibly lost" block, not counted). Needs a build.
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
memcheck() {
  NET_UNIX_UNDER_VALGRIND=1 valgrind --tool=memcheck --undef-value-errors=no --leak-check=full --errors-for-leak-kinds=definite \
    --error-exitcode=99 --log-file="$log" node --jitless "$@" >/dev/null || rc=$?
  grep -E "ERROR SUMMARY|Invalid (read|write|free)|net-unix|definitely lost" "$log" | head -40
}
memcheck scripts/valgrind-exercise.js
# The poll-thread backend (what Bun and Deno get), forced under Node, through the smoke test.
memcheck -r ./__test__/fixtures/poll-thread.cjs __test__/fixtures/runtime-smoke.cjs "$PWD/index.js"
echo "valgrind log: $log"
exit "${rc:-0}"
