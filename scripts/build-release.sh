#!/usr/bin/env bash
# Builds the self-contained release binary and its man page and shell completions into DIR
# (default .build/dist):
#   DIR/runbook                      stripped; Swift's runtime and Foundation linked in statically, so it
#                                    needs only glibc, libstdc++, zlib and libsqlite3 at run time
#   DIR/man/runbook.1                from swift-argument-parser's generate-manual tool
#   DIR/completions/{runbook.bash,_runbook,runbook.fish}
# Usage: scripts/build-release.sh [DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-.build/dist}
mkdir -p "$out/man" "$out/completions"
log=$(mktemp /tmp/runbook-release.XXXXXX); trap 'rm -f "$log"' EXIT
run_quiet() { "$@" >"$log" 2>&1 || { cat "$log" >&2; echo "failed: $*" >&2; exit 1; }; }

# --no-export-dynamic: the static Swift runtime's link arguments export every symbol of the
# executable (56,000 dynamic symbols), which nothing here looks up; each dladdr() (the runtime's
# own at start-up among them) scans them all. Without it `validate runbooks` starts in about half
# the time (Benchmarks/startup.sh). The executable stays position-independent (ASLR).
echo "building the release binary (static Swift runtime)..."
link=(-Xlinker --no-export-dynamic)
run_quiet swift build -c release --static-swift-stdlib "${link[@]}" --product runbook
bin=$(swift build -c release --static-swift-stdlib "${link[@]}" --show-bin-path)/runbook
cp "$bin" "$out/runbook"
strip "$out/runbook"

# The man page from swift-argument-parser's generate-manual tool (what its GenerateManual plugin runs;
# the plugin itself would rebuild every product without the static runtime), built from the
# checkout SwiftPM already has, in a scratch folder of its own.
echo "building the man page (swift-argument-parser's generate-manual)..."
parser=$(swift package show-dependencies --format json | python3 -c '
import json, sys
def walk(d):
    for x in d.get("dependencies", []):
        if x["identity"] == "swift-argument-parser": print(x["path"]); sys.exit()
        walk(x)
walk(json.load(sys.stdin))')
run_quiet swift build --package-path "$parser" --scratch-path .build/manual-tool --product generate-manual
rm -rf .build/manual-out && mkdir -p .build/manual-out
run_quiet "$(swift build --package-path "$parser" --scratch-path .build/manual-tool --show-bin-path)/generate-manual" \
  "$out/runbook" --output-directory .build/manual-out
cp .build/manual-out/runbook.1 "$out/man/runbook.1"

"$out/runbook" --generate-completion-script bash >"$out/completions/runbook.bash"
"$out/runbook" --generate-completion-script zsh >"$out/completions/_runbook"
"$out/runbook" --generate-completion-script fish >"$out/completions/runbook.fish"

# The promise: nothing from the Swift toolchain's folder at run time.
if ldd "$out/runbook" | grep -Ei 'swift|Foundation|dispatch|BlocksRuntime'; then
  echo "error: $out/runbook still loads the libraries above from the Swift toolchain" >&2; exit 1
fi
echo "built $out/runbook ($(du -h "$out/runbook" | cut -f1), $("$out/runbook" --version))"
