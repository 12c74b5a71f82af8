#!/usr/bin/env bash
# Debian's Chromium for the browser tests (tests_browser/). Playwright drives it through
# executable_path; its own browser downloads are never used (`playwright install` is not run).
# Exit 0: a Chromium is there (or was just installed). Exit 3: none, and it cannot be installed
# here (no apt-get, or not root and no password-less sudo); .ci/run skips the browser test then.
set -euo pipefail
for c in "${LDM_CHROMIUM:-}" /usr/bin/chromium /usr/bin/chromium-browser; do
    if [ -n "$c" ] && [ -x "$c" ]; then echo "chromium: $c"; exit 0; fi
done
if ! command -v apt-get >/dev/null 2>&1; then
    echo "no Chromium, and no apt-get to install it: install Chromium, then set LDM_CHROMIUM=/path/to/chromium" >&2
    exit 3
fi
if [ "$(id -u)" = 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
else
    echo "no Chromium, and installing it needs root: run 'sudo apt-get install chromium' (or set LDM_CHROMIUM)" >&2
    exit 3
fi
echo "installing Debian's chromium with apt-get (about a minute) ..."
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium > /dev/null
echo "chromium: $(command -v chromium)"
