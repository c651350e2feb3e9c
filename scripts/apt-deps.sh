#!/usr/bin/env bash
# System packages the test suite needs: Debian's chromium (browser tests drive it with
# Playwright; browser downloads do not work here). Terminal-shell tests use Python's pty, not tmux.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
