#!/usr/bin/env bash
# Install edged on a Raspberry Pi OS Bookworm board (Lite, 64-bit) as a hardened service.
#
#   sudo firmware-tools/install.sh /path/to/edged.toml
#
# 1. apt-get update, then python3-venv.
# 2. A venv in /opt/edged/venv made with --system-site-packages: picamera2 and libcamera
#    exist only as apt packages on Raspberry Pi OS, and the venv must see them (and their
#    numpy) instead of pip installing a second numpy beside them.
# 3. edged itself, then `edged extras` reads the config and names what its drivers need:
#    the apt packages (python3-picamera2, python3-evdev, libzbar0, libusb-1.0-0, ...) and
#    the pip extras (hid, camera, usb, pyzbar), which are installed; none is dropped.
# 4. The service user `edged`, the config in /etc/edged, private keys 0600 owned by edged,
#    and `edged check-config --user edged`: the files it names are readable by the service.
# 5. The udev rules and the systemd unit with a drop-in (edged.service.d/devices.conf) that
#    allows exactly the device classes and groups the config's drivers need; then the
#    service is enabled and started.
#
# Each step prints what it does; a failing step names itself and exits with its own code
# (step functions chain with && / || return: `set -e` does not apply inside them):
#   2 usage/not root  3 config file  10 apt-get update  11 apt base packages  20 venv
#   21 pip install edged  22 config unreadable for `edged extras`  30 apt driver packages
#   31 pip install extras  32 /usr/local/bin/edged  40 service user  41 config and keys  42 check-config
#   50 udev  51 systemd
# EDGED_SOURCE (a path, wheel or requirement; default: this repository) says what to install.
set -euo pipefail

fail() { echo "install.sh: $1" >&2; exit "$2"; }
step() {
    local code=$1 what=$2
    shift 2
    echo "==> $what"
    "$@" || fail "failed: $what (exit $code)" "$code"
}

[ "$(id -u)" -eq 0 ] || fail "run as root: sudo $0 CONFIG.toml" 2
[ $# -eq 1 ] || fail "usage: $0 CONFIG.toml" 2
config="$1"
[ -f "$config" ] && [ -r "$config" ] || fail "config file not found or unreadable: $config" 3
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source_spec="${EDGED_SOURCE:-$repo}"
prefix=/opt/edged
venv="$prefix/venv"
etc=/etc/edged
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1

apt_install() { apt-get install -y -q --no-install-recommends "$@"; }

step 10 "apt-get update" apt-get update -q
step 11 "install python3-venv" apt_install python3 python3-venv

step 20 "create $venv (with the system's site packages)" \
    python3 -m venv --system-site-packages "$venv"
step 21 "pip install edged from $source_spec" "$venv/bin/pip" install -q "$source_spec"

needs_apt=$("$venv/bin/edged" extras --apt "$config") \
    || fail "failed: read the drivers of $config (see above) (exit 22)" 22
needs_pip=$("$venv/bin/edged" extras "$config") \
    || fail "failed: read the drivers of $config (see above) (exit 22)" 22
if [ -n "$needs_apt" ]; then
    # shellcheck disable=SC2086 # one package per word
    step 30 "apt packages for the configured drivers: $(echo $needs_apt)" apt_install $needs_apt
fi
if [ -n "$needs_pip" ]; then
    step 31 "pip install edged[$needs_pip]" "$venv/bin/pip" install -q "$source_spec[$needs_pip]"
fi
step 32 "link /usr/local/bin/edged" ln -sf "$venv/bin/edged" /usr/local/bin/edged

needs_groups=$("$venv/bin/edged" extras --groups "$config") \
    || fail "failed: read the drivers of $config (see above) (exit 22)" 22
groups=()
for group in ${needs_groups//,/ }; do
    # gpio owns /dev/gpiochip* on Raspberry Pi OS; plain Debian has no such group yet.
    [ "$group" = gpio ] && ! getent group gpio >/dev/null && groupadd --system gpio
    getent group "$group" >/dev/null && groups+=("$group")
done
add_user() {
    if id edged >/dev/null 2>&1; then
        [ ${#groups[@]} -eq 0 ] || usermod -a -G "$(IFS=,; echo "${groups[*]}")" edged
    else
        useradd --system --home-dir /var/lib/edged --no-create-home --shell /usr/sbin/nologin \
            --user-group ${groups:+--groups "$(IFS=,; echo "${groups[*]}")"} edged
    fi
}
step 40 "service user edged (groups: ${groups[*]:-none})" add_user

install_config() {
    install -d -m 0750 -o root -g edged "$etc" || return 1
    if [ "$(realpath "$config")" != "$(realpath -m "$etc/edged.toml")" ]; then
        install -m 0640 -o root -g edged "$config" "$etc/edged.toml" || return 1
    fi
    # Certificates readable by the service's group; private keys (the config's key_file and
    # any *.key in /etc/edged) 0600 for edged only.
    local key cert
    for cert in "$etc"/*.pem "$etc"/*.crt; do
        [ -e "$cert" ] || continue
        chown root:edged "$cert" && chmod 0640 "$cert" || return 1
    done
    for key in "$etc"/*.key $("$venv/bin/python" -c '
import sys
from edged.config import load_config
tls = load_config(__import__("pathlib").Path(sys.argv[1]), {}).broker.tls
print(tls.key_file if tls and tls.key_file else "")' "$etc/edged.toml"); do
        [ -e "$key" ] || continue
        chown edged:edged "$key" && chmod 0600 "$key" || return 1
    done
}
step 41 "config in $etc/edged.toml, private keys 0600" install_config
step 42 "edged check-config as the service user" \
    "$venv/bin/edged" check-config --user edged "$etc/edged.toml"

reload_udev() {
    install -D -m 0644 "$repo/systemd/99-edged.rules" /etc/udev/rules.d/99-edged.rules \
        && udevadm control --reload-rules && udevadm trigger
}
step 50 "udev rules" reload_udev

start_unit() {
    install -D -m 0644 "$repo/systemd/edged.service" /etc/systemd/system/edged.service \
        && install -D -m 0644 "$repo/README.md" "$prefix/README.md" \
        && install -d -m 0755 /etc/systemd/system/edged.service.d \
        && "$venv/bin/edged" extras --unit "$etc/edged.toml" \
            > /etc/systemd/system/edged.service.d/devices.conf \
        && systemctl daemon-reload && systemctl enable --now edged.service
}
step 51 "systemd unit edged.service, enabled and started" start_unit
echo "edged is installed: systemctl status edged; edged doctor --config $etc/edged.toml"
