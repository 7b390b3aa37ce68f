#!/usr/bin/env bash
# The web page test drives Debian's Chromium (playwright-core cannot download a browser on these machines).
# Install it when missing and we are allowed to; otherwise say how.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Debian chromium for the web page test..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
else
  echo "chromium is missing: install it (sudo apt-get install chromium) or the web page test fails." >&2
fi
