#!/usr/bin/env bash
# Make this board's Ed25519 identity key at provisioning and print its public key, which the
# backend registers for the device (it verifies the daily settlement's signature with it).
#   sudo firmware-tools/make-identity.sh [/etc/edged/identity.key]
# Point `[settlement] identity_key` at the file. An existing key is never replaced.
set -euo pipefail
key="${1:-/etc/edged/identity.key}"
edged_bin="${EDGED:-edged}"
umask 077
"$edged_bin" identity create --key "$key" >/tmp/edged-identity.$$ || { rm -f /tmp/edged-identity.$$; exit 1; }
if id edged >/dev/null 2>&1; then chown edged:edged "$key"; fi
chmod 0600 "$key"
echo "identity key: $key"
echo "public key (register it with the backend for this device):"
cat /tmp/edged-identity.$$
rm -f /tmp/edged-identity.$$
