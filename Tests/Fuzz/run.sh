#!/usr/bin/env bash
# Builds the libFuzzer target for the outside-input parsers and runs it on the committed corpus.
# Usage: Tests/Fuzz/run.sh [SECONDS]   (default 600). New inputs that add coverage land in Tests/Fuzz/corpus.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-600}
bp=.build-fuzz
# RunbookCore and Yams compiled with coverage instrumentation for libFuzzer (a separate build folder).
swift build --build-path "$bp" --target RunbookCore -Xswiftc -sanitize=fuzzer -Xcc -fsanitize=fuzzer-no-link
objects=$(find "$bp/debug/RunbookCore.build" "$bp/debug/Yams.build" "$bp/debug/CYaml.build" -name '*.o')
modulemap=$(find "$bp" -path '*CYaml*' -name 'module.modulemap' | head -1)
swiftc -sanitize=fuzzer -parse-as-library -I "$bp/debug/Modules" ${modulemap:+-Xcc -fmodule-map-file="$modulemap"} \
  -Xcc -I -Xcc "$bp/checkouts/Yams/Sources/CYaml/include" \
  Tests/Fuzz/FuzzParsers.swift $objects -o "$bp/fuzz-parsers"
mkdir -p Tests/Fuzz/corpus
"$bp/fuzz-parsers" -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 Tests/Fuzz/corpus
