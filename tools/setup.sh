#!/usr/bin/env bash
# Idempotent set-up for multi6lab: Debian packages, the .venv, Open vSwitch running.
# Called by every Make target that needs the emulator; safe to run again and again.
# 'setup.sh --venv' makes only the .venv (no root): what 'make unit' and 'make lint' need.
# 'setup.sh --install' installs everything but starts nothing: how the VM image is made (tools/vm/build.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
venv_only=false
install_only=false
[ "${1:-}" = --venv ] && venv_only=true
[ "${1:-}" = --install ] && install_only=true

if ! $venv_only && [ "$(id -u)" -ne 0 ]; then
  echo "multi6lab: setup needs root (it installs packages and starts Open vSwitch); run it as 'sudo make setup'." >&2
  exit 1
fi
if $venv_only && [ -e .venv ] && [ ! -w .venv ]; then
  echo "multi6lab: .venv belongs to $(stat -c %U .venv); run 'sudo make setup' once, or 'sudo chown -R $(id -un) .venv'." >&2
  exit 1
fi

PKGS="mininet openvswitch-switch iperf3 tcpdump iputils-ping ethtool iproute2 nftables iptables frr knot
      python3 python3-venv python3-pip graphviz procps kmod python3-selenium
      openssh-server openssh-client sudo util-linux"
# Reports are checked in a real browser. Debian packages Chromium and its driver; Ubuntu's chromium packages
# only install a snap, which a container or CI runner cannot start, so there the browser is the one already on
# the machine (hosted runners have Chrome and ChromeDriver) and the check is skipped, with a note, without one.
. /etc/os-release
if [ "${ID:-}" != ubuntu ]; then PKGS="$PKGS chromium chromium-driver"; fi
missing=""
$venv_only && PKGS="python3 python3-venv"  # without root nothing can be installed: only say what is missing
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ] && $venv_only; then
  echo "multi6lab: the .venv needs the Debian packages$missing; run 'sudo make setup' once." >&2
  exit 1
fi
if [ -n "$missing" ]; then
  echo "== installing Debian packages:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends $missing
  # Cluster mode (--servers, docs/cluster.md) runs SSH servers of its own, on its own addresses, and needs
  # only the programs: where systemd started the system's SSH service on installing it here, stop it again.
  if [[ " $missing " == *" openssh-server "* ]] && [ -d /run/systemd/system ]; then
    systemctl disable --now ssh.service ssh.socket >/dev/null 2>&1 || true
  fi
fi

# Debian's python3 (not a pyenv or other interpreter): Mininet's Debian module lives in its dist-packages.
PY=/usr/bin/python3
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "multi6lab: needs Python 3.11 or newer as $PY (Debian 12, Ubuntu 24.04); this machine has" \
       "$("$PY" -V 2>&1), for which the pinned requirements (matplotlib, dnspython) have no release." >&2
  exit 1
fi
if [ ! -x .venv/bin/python ] || { ! $venv_only && ! .venv/bin/python -c "import mininet" 2>/dev/null; }; then
  echo "== creating .venv from $PY with --system-site-packages"
  rm -rf .venv
  "$PY" -m venv --system-site-packages .venv
fi
stamp=.venv/.requirements.sha
want=$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "== installing pinned Python dependencies"
  quiet() { { grep -v "is ignored: it is neither a file nor a directory" || true; } >&2; }
  .venv/bin/pip install -q --disable-pip-version-check -r requirements.txt 2>&1 | quiet
  .venv/bin/pip install -q --disable-pip-version-check --no-deps -e . 2>&1 | quiet
  echo "$want" > "$stamp"
fi

$venv_only && exit 0
$install_only && { echo "== installed (nothing started)"; exit 0; }

# Open vSwitch: use the running service if there is one, otherwise start it ourselves (no systemd here).
if ! ovs-vsctl --timeout=5 show >/dev/null 2>&1; then
  echo "== starting Open vSwitch"
  /usr/share/openvswitch/scripts/ovs-ctl start --system-id=random >/dev/null
fi
# The kernel datapath is used only where the module exists; the emulator checks /sys/module/openvswitch.
modprobe -q openvswitch 2>/dev/null || true
if [ -d /sys/module/openvswitch ]; then dp="kernel (system)"; else dp="userspace (netdev)"; fi
echo "== ready: Open vSwitch $(ovs-vsctl --version | head -1 | awk '{print $NF}'), datapath: $dp"
