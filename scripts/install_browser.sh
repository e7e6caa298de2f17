#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests and screenshots, if it is not there yet.
# Needs root (CI and these machines run as root); elsewhere it says what to do and carries on,
# and the browser tests skip with that reason (they fail instead when NURTURE_REQUIRE_SERVICES=1).
set -u
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's chromium for the browser tests..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null && exit 0
  # Carry on: the browser tests then skip with the reason (and fail in CI, which needs them).
  echo "note: could not install chromium with apt-get; browser tests will skip." >&2
  exit 0
fi
echo "note: chromium is not installed and this user cannot install it; browser tests will skip." >&2
exit 0
