#!/usr/bin/env bash
# `npm test` after the browser check: the static checks (`npm run check`) and the unit tests (`npm run test:unit`)
# at the same time. The checks are mostly single-threaded and the tests keep both cores busy, so side by side they
# end sooner than one after the other. The tests write to the terminal as they run; the checks' output is kept and
# printed once both are done. Fails when either fails, and says which.
set -uo pipefail
log=$(mktemp "${TMPDIR:-/tmp}/dressmatch-check.XXXXXX")
trap 'rm -f "$log"' EXIT

npm run --silent check >"$log" 2>&1 &
check=$!
npm run --silent test:unit
tests=$?
wait "$check"
checked=$?

echo
echo "── npm run check ──"
cat "$log"
status() { if [ "$1" = 0 ]; then echo "passed"; else echo "FAILED (exit $1)"; fi; }
echo "npm run check: $(status "$checked"); npm run test:unit: $(status "$tests")"
[ "$checked" = 0 ] && [ "$tests" = 0 ]
