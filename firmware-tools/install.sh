#!/usr/bin/env bash
# Install edged on a Raspberry Pi OS (Bookworm) board as a hardened systemd service.
#   sudo firmware-tools/install.sh /path/to/edged.toml
# Creates the `edged` user, a virtualenv in /opt/edged, the config in /etc/edged, the udev
# rules and the unit; then validates the config and starts the service.
set -euo pipefail
[ "$(id -u)" -eq 0 ] || { echo "run as root (sudo)" >&2; exit 1; }
config="${1:?usage: install.sh CONFIG.toml}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

apt-get install -y -qq python3-venv >/dev/null
id edged >/dev/null 2>&1 || useradd --system --home /var/lib/edged --shell /usr/sbin/nologin \
    --groups dialout,input,video,lp edged
python3 -m venv /opt/edged
/opt/edged/bin/pip install --quiet "$repo[hid,picamera]" || /opt/edged/bin/pip install --quiet "$repo"
ln -sf /opt/edged/bin/edged /usr/local/bin/edged

install -d -m 0750 -o root -g edged /etc/edged
install -m 0640 -o root -g edged "$config" /etc/edged/edged.toml
/opt/edged/bin/edged check-config /etc/edged/edged.toml
for key in /etc/edged/*.key; do
    [ -e "$key" ] && chown edged:edged "$key" && chmod 0600 "$key"
done

[ -f "$repo/systemd/99-edged.rules" ] && install -m 0644 "$repo/systemd/99-edged.rules" /etc/udev/rules.d/
udevadm control --reload-rules && udevadm trigger
install -m 0644 "$repo/systemd/edged.service" /etc/systemd/system/edged.service
systemctl daemon-reload
systemctl enable --now edged
systemctl --no-pager status edged | head -n 5
