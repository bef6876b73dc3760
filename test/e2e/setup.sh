#!/usr/bin/env bash
# Installs everything the real-workbench tests need, offline except the npm registry and Debian apt:
#   Debian's Chromium (Playwright drives it; we never let Playwright download browsers),
#   libkrb5-dev (code-server's bundled VS Code builds the `kerberos` native module),
#   ripgrep (Debian's binary seeds @vscode/ripgrep's download cache: its postinstall would fetch from GitHub),
#   code-server + playwright-core from test/e2e/package-lock.json.
# Idempotent: every step checks whether its result is already there, so a warm run takes about a second.
set -euo pipefail
cd "$(dirname "$0")"
E2E_DIR="$(pwd)"

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# --- 1. Debian packages -------------------------------------------------------------------------------------
need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v rg >/dev/null 2>&1 || need_apt+=(ripgrep)
dpkg -s libkrb5-dev >/dev/null 2>&1 || need_apt+=(libkrb5-dev)
# node-gyp needs a compiler toolchain and python3 for code-server's native modules (kerberos, node-pty, ...).
command -v make >/dev/null 2>&1 || need_apt+=(make)
command -v g++ >/dev/null 2>&1 || need_apt+=(g++)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "[e2e setup] apt-get install ${need_apt[*]}"
  $SUDO apt-get update -q
  # The lock timeout lets this wait for another apt run (CI images sometimes run unattended-upgrades) instead of failing.
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    -o DPkg::Lock::Timeout=600 "${need_apt[@]}"
fi

# --- 2. code-server + playwright-core -----------------------------------------------------------------------
# The stamp records the lockfile it was installed from and is written only after every postinstall succeeded,
# so an interrupted install is redone rather than trusted.
STAMP="node_modules/.llava-e2e-installed"
LOCK_HASH="$(sha256sum package-lock.json | cut -d' ' -f1)-node$(node -p 'process.versions.node')"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$LOCK_HASH" ] \
   && [ -x node_modules/code-server/lib/vscode/node_modules/@vscode/ripgrep/bin/rg ]; then
  echo "[e2e setup] code-server already installed"
  exit 0
fi

export npm_config_yes=true          # node-pty's postinstall runs `npx`, which would otherwise prompt and hang
export npm_config_unsafe_perm=true  # code-server's postinstall refuses to run as root without it (npm 10 warns "unknown config": harmless)
export npm_config_fund=false npm_config_audit=false
export ONNXRUNTIME_NODE_INSTALL=skip

# Fetch the packages without running any install script first: the ripgrep version to seed is only known
# once code-server's own shrinkwrap is on disk.
echo "[e2e setup] npm ci --ignore-scripts"
npm ci --ignore-scripts --no-audit --no-fund

# code-server's postinstall runs `npm install` in lib/vscode, whose @vscode/ripgrep downloads
# `ripgrep-<VERSION>-<target>.tar.gz` from GitHub unless it finds it in os.tmpdir()/vscode-ripgrep-cache-<pkg version>.
RG_PKG_VERSION="$(node -p "require('./node_modules/code-server/lib/vscode/npm-shrinkwrap.json').packages['node_modules/@vscode/ripgrep'].version")"
PEEK="$(mktemp -d)"
trap 'rm -rf "$PEEK"' EXIT
(cd "$PEEK" && npm pack --silent "@vscode/ripgrep@${RG_PKG_VERSION}" >/dev/null && tar xzf ./*.tgz)
RG_BIN_VERSION="$(sed -n "s/^const VERSION = '\(.*\)';/\1/p" "$PEEK/package/lib/postinstall.js")"
if [ -z "$RG_BIN_VERSION" ]; then
  echo "[e2e setup] could not read the ripgrep binary version from @vscode/ripgrep@${RG_PKG_VERSION}" >&2
  exit 1
fi
case "$(uname -m)" in
  x86_64) RG_TARGET=x86_64-unknown-linux-musl ;;
  aarch64) RG_TARGET=aarch64-unknown-linux-musl ;;
  *) echo "[e2e setup] unsupported architecture $(uname -m)" >&2; exit 1 ;;
esac
RG_CACHE="$(node -p "require('os').tmpdir()")/vscode-ripgrep-cache-${RG_PKG_VERSION}"
RG_ASSET="$RG_CACHE/ripgrep-${RG_BIN_VERSION}-${RG_TARGET}.tar.gz"
if [ ! -s "$RG_ASSET" ]; then
  echo "[e2e setup] seeding $RG_ASSET with $(command -v rg)"
  mkdir -p "$RG_CACHE"
  tar czf "$RG_ASSET" -C "$(dirname "$(command -v rg)")" rg
fi

# Now run the install scripts (code-server's postinstall installs its VS Code's dependencies).
echo "[e2e setup] npm rebuild (install scripts)"
npm rebuild --no-audit --no-fund

"$E2E_DIR/node_modules/.bin/code-server" --version >/dev/null
test -x node_modules/code-server/lib/vscode/node_modules/@vscode/ripgrep/bin/rg
echo "$LOCK_HASH" > "$STAMP"
echo "[e2e setup] done"
