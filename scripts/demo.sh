#!/usr/bin/env bash
# The development default end to end: embedded broker, simulated cloud, simulated devices,
# and a scripted shopper who scans three items, pays by payment code and gets a receipt.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
EXTRAS="${EXTRAS:-demo}" bash scripts/bootstrap.sh
exec .venv/bin/edged demo "$@"
