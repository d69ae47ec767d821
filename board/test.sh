#!/usr/bin/env bash
# `npm test` after bootstrap: the unit and simulation suites two files at a time (CPU-bound, no namespace or file
# shared between them: ~1.5 min instead of ~3), then the end-to-end suite and the image-tool tests one file at a
# time (timing-sensitive: CARP intervals, outages; fixed board prefixes). Arguments go to both tap runs (e.g.
# `-R tap`); each run prints its own summary, and the exit status is a failure if either failed.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH" # also when run directly, not through npm
tap --jobs 2 test/unit/*.test.ts test/sim/*.test.ts "$@"; fast=$?
tap test/e2e/*.test.ts test/image/*.test.ts "$@"; serial=$?
exit $(( fast != 0 || serial != 0 ))
