#!/usr/bin/env bash
# Install the system packages the tests use when they are missing (Debian/Raspberry Pi OS).
set -euo pipefail

need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
ldconfig -p 2>/dev/null | grep -q 'libzbar\.so' || need+=(libzbar0)
# The installer test debootstraps a Bookworm root; the unit tests run systemd-analyze.
command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || need+=(debootstrap)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
# The settlement tests move the daemon's wall clock across the business-day cut-over.
compgen -G '/usr/lib/*/faketime/libfaketime.so.1' >/dev/null || need+=(libfaketime)
# The kiosk and technician pages are tested in Debian's headless Chromium (through
# Playwright's client, never a browser it downloads); a CJK font makes the screenshots legible.
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
fc-list 2>/dev/null | grep -qi 'wenquanyi\|noto sans cjk' || need+=(fonts-wqy-microhei)
# The interop matrix forms a three-node RabbitMQ cluster (MQTT plugin) on loopback.
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || need+=(rabbitmq-server)
[ ${#need[@]} -eq 0 ] && exit 0

echo "installing system packages: ${need[*]}" >&2
as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
