#!/usr/bin/env bash
# System packages the test suite needs: Debian's chromium (browser tests drive it with
# Playwright; browser downloads do not work here). Terminal-shell tests use Python's pty, not tmux.
# jackd2 + supercollider-server: the sound tests (tests/sound/) run a real scsynth on JACK's dummy driver.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v jackd >/dev/null 2>&1 || need+=(jackd2)
command -v scsynth >/dev/null 2>&1 || need+=(supercollider-server)
# ip and unshare: the Ableton Link tests make a private network namespace (tests/link/).
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v unshare >/dev/null 2>&1 || need+=(util-linux)
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
# jackd2 asks whether to enable realtime scheduling for the audio group: answer it up front (no).
echo "jackd2 jackd/tweak_rt_limits boolean false" | $SUDO debconf-set-selections
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
