#!/usr/bin/env bash
# Builds the self-contained release binary and its man page and shell completions into DIR
# (default .build/dist):
#   DIR/runbook                      stripped; Swift's runtime and Foundation linked in statically, so it
#                                    needs only glibc, libstdc++, zlib and libsqlite3 at run time
#   DIR/man/runbook.1                from swift-argument-parser's generate-manual plugin
#   DIR/completions/{runbook.bash,_runbook,runbook.fish}
# Usage: scripts/build-release.sh [DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-.build/dist}
mkdir -p "$out/man" "$out/completions"
log=$(mktemp /tmp/runbook-release.XXXXXX); trap 'rm -f "$log"' EXIT
run_quiet() { "$@" >"$log" 2>&1 || { cat "$log" >&2; echo "failed: $*" >&2; exit 1; }; }

# The man page first: the plugin builds every product in release mode (dynamically linked); the static
# link below then relinks the same objects, so the binary installed is the static one.
echo "building the man page (swift-argument-parser's generate-manual plugin)..."
run_quiet swift package --disable-sandbox plugin generate-manual --configuration release
man=$(find .build/plugins -name runbook.1 -path '*GenerateManual*' | head -1)
[ -n "$man" ] || { echo "generate-manual made no runbook.1" >&2; exit 1; }
cp "$man" "$out/man/runbook.1"

echo "building the release binary (static Swift runtime)..."
run_quiet swift build -c release --static-swift-stdlib --product runbook
bin=$(swift build -c release --show-bin-path)/runbook
cp "$bin" "$out/runbook"
strip "$out/runbook"

"$out/runbook" --generate-completion-script bash >"$out/completions/runbook.bash"
"$out/runbook" --generate-completion-script zsh >"$out/completions/_runbook"
"$out/runbook" --generate-completion-script fish >"$out/completions/runbook.fish"

# The promise: nothing from the Swift toolchain's folder at run time.
if ldd "$out/runbook" | grep -Ei 'swift|Foundation|dispatch|BlocksRuntime'; then
  echo "error: $out/runbook still loads the libraries above from the Swift toolchain" >&2; exit 1
fi
echo "built $out/runbook ($(du -h "$out/runbook" | cut -f1), $("$out/runbook" --version))"
