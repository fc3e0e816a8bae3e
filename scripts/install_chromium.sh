#!/usr/bin/env bash
# Debian's Chromium for the dashboard's browser tests (Playwright drives it; it never downloads a browser
# of its own). Installs it when missing and this is root; otherwise says what to do. It never fails the
# build: without Chromium the browser tests fail and name what is missing.
set -uo pipefail
CHROMIUM="${TWEETSENT_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "install_chromium: $CHROMIUM missing; install Debian's chromium package (sudo apt-get install -y chromium)" >&2
    exit 0
fi
echo "install_chromium: installing Debian's chromium package" >&2
for attempt in 1 2 3; do
    if apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        chromium fonts-liberation >/dev/null; then
        exit 0
    fi
    echo "install_chromium: attempt $attempt failed" >&2
    sleep $((attempt * 5))
done
echo "install_chromium: could not install chromium; the browser tests will fail" >&2
exit 0
