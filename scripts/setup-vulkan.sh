#!/usr/bin/env bash
# Installs a Vulkan adapter for the WebGPU tests (test/unit/webgpu.test.ts) on a Debian 12 machine with no GPU:
# the Vulkan loader and Mesa's software driver, lavapipe. Bookworm's Mesa 22.3 lavapipe lacks a feature Dawn
# requires ("No supported adapters"); bookworm-backports' Mesa (25.0 when this was written) works.
# Nothing here is needed to use the extension: on a machine with a GPU its own driver is the adapter.
set -euo pipefail
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
if ! grep -q '^VERSION_CODENAME=bookworm' /etc/os-release 2>/dev/null; then
  echo "[vulkan setup] not Debian 12 (bookworm): install libvulkan1 and mesa-vulkan-drivers >= 24 yourself" >&2
  exit 1
fi
lvp_version() { dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true; }
if dpkg --compare-versions "$(lvp_version)" ge 24 2>/dev/null && dpkg -s libvulkan1 >/dev/null 2>&1; then
  echo "[vulkan setup] lavapipe $(lvp_version) already installed"
  exit 0
fi
list=/etc/apt/sources.list.d/bookworm-backports.list
grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/ || echo 'deb http://deb.debian.org/debian bookworm-backports main' | $SUDO tee "$list" >/dev/null
$SUDO apt-get update -q
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=600 \
  libvulkan1 -t bookworm-backports mesa-vulkan-drivers
echo "[vulkan setup] lavapipe $(lvp_version) installed"
