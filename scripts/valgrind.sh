#!/usr/bin/env bash
# Runs scripts/valgrind-exercise.js under valgrind memcheck and reports invalid reads/writes and
# frees in the addon. V8's JIT and GC confuse memcheck's definedness tracking, so undefined-value
# errors are off; invalid accesses, bad frees and definite leaks are what this checks (Node's own
# inspector thread leaves a "possibly lost" block, not counted). Needs a build.
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
valgrind --tool=memcheck --undef-value-errors=no --leak-check=full --errors-for-leak-kinds=definite \
  --error-exitcode=99 --log-file="$log" \
  node --jitless scripts/valgrind-exercise.js || rc=$?
grep -E "ERROR SUMMARY|Invalid (read|write|free)|net-unix|definitely lost" "$log" | head -40
echo "valgrind log: $log"
exit "${rc:-0}"
