#!/usr/bin/env bash
# Builds the release binary and installs it with its man page and shell completions.
# Usage: scripts/install.sh [PREFIX]      PREFIX defaults to /usr/local:
#   PREFIX/bin/runbook
#   PREFIX/share/man/man1/runbook.1
#   PREFIX/share/bash-completion/completions/runbook
#   PREFIX/share/zsh/site-functions/_runbook
#   PREFIX/share/fish/vendor_completions.d/runbook.fish
# $DESTDIR is prepended to every path (for packaging). Needs Swift 6.3 to build; the binary it installs
# does not need Swift to run.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=${1:-/usr/local}
dest=${DESTDIR:-}
dist=$(mktemp -d /tmp/runbook-dist.XXXXXX); trap 'rm -rf "$dist"' EXIT
scripts/build-release.sh "$dist"
install -Dm755 "$dist/runbook" "$dest$prefix/bin/runbook"
install -Dm644 "$dist/man/runbook.1" "$dest$prefix/share/man/man1/runbook.1"
install -Dm644 "$dist/completions/runbook.bash" "$dest$prefix/share/bash-completion/completions/runbook"
install -Dm644 "$dist/completions/_runbook" "$dest$prefix/share/zsh/site-functions/_runbook"
install -Dm644 "$dist/completions/runbook.fish" "$dest$prefix/share/fish/vendor_completions.d/runbook.fish"
echo "installed $dest$prefix/bin/runbook; try: runbook --help, man runbook"
