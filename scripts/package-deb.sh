#!/usr/bin/env bash
# Builds a Debian package of runbook with dpkg-deb: the self-contained binary, its man page, shell
# completions, an example token file and a hardened systemd unit for `runbook serve`.
# Usage: scripts/package-deb.sh [OUTDIR]     (default .build/deb); prints the .deb's path last.
# Install with `dpkg -i runbook_VERSION_ARCH.deb`; the service is not started until you enable it:
#   edit /etc/runbook/tokens and /etc/default/runbook, put runbooks in /etc/runbook/runbooks, then
#   systemctl enable --now runbook
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-.build/deb}
mkdir -p "$out"
root=$(mktemp -d /tmp/runbook-deb.XXXXXX); trap 'rm -rf "$root"' EXIT
chmod 755 "$root"

DESTDIR="$root" scripts/install.sh /usr >/dev/null
version=$("$root/usr/bin/runbook" --version | sed -e 's/^[^0-9]*//' -e 's/-/~/g')
arch=$(dpkg --print-architecture)

install -Dm644 packaging/runbook.service "$root/lib/systemd/system/runbook.service"
install -Dm644 packaging/runbook.default "$root/etc/default/runbook"
install -Dm644 packaging/tokens.example "$root/usr/share/doc/runbook/examples/tokens"
install -Dm644 README.md "$root/usr/share/doc/runbook/README.md"
install -d -m755 "$root/etc/runbook/runbooks"
gzip -9n "$root/usr/share/man/man1/runbook.1"

mkdir -p "$root/DEBIAN"
cat >"$root/DEBIAN/control" <<CONTROL
Package: runbook
Version: $version
Architecture: $arch
Maintainer: runbook developers <runbook@localhost>
Depends: libc6, libstdc++6, zlib1g, libsqlite3-0
Recommends: systemd
Section: admin
Priority: optional
Installed-Size: $(du -sk "$root" | cut -f1)
Description: incident-response runbook automation engine
 runbook runs YAML runbooks that detect, diagnose, mitigate and verify an
 incident, from a terminal (runbook run) or when Prometheus Alertmanager
 fires (runbook serve), and records every decision as a timeline.
CONTROL
echo "/etc/default/runbook" >"$root/DEBIAN/conffiles"
cat >"$root/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  if ! getent passwd runbook >/dev/null; then
    adduser --system --group --home /var/lib/runbook --no-create-home --quiet runbook 2>/dev/null \
      || useradd --system --user-group --home-dir /var/lib/runbook --shell /usr/sbin/nologin runbook
  fi
  if [ ! -e /etc/runbook/tokens ]; then
    install -m 600 -o runbook -g runbook /usr/share/doc/runbook/examples/tokens /etc/runbook/tokens
  fi
  if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null 2>&1 || true; fi
fi
exit 0
POSTINST
cat >"$root/DEBIAN/postrm" <<'POSTRM'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null 2>&1 || true; fi
exit 0
POSTRM
chmod 755 "$root/DEBIAN/postinst" "$root/DEBIAN/postrm"

deb="$out/runbook_${version}_${arch}.deb"
dpkg-deb --root-owner-group --build "$root" "$deb" >/dev/null
echo "$deb"
