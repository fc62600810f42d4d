#!/bin/sh
# System packages the local stack and the tests need: redis-server, a CJK font so the sketch
# backend draws Chinese text, and iproute2 (`ip netns`) for the two-machine test. Installed
# with apt when running as root on Debian/Ubuntu; otherwise we say what to install. With
# --test, also what the export tests drive: Debian's chromium (the HTML export is opened in
# it) and poppler-utils (pdftotext, pdftoppm).
set -e
missing=""
command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
fc-list :lang=zh 2>/dev/null | grep -q . || missing="$missing fonts-wqy-microhei"
command -v ip >/dev/null 2>&1 || missing="$missing iproute2"
if [ "${1:-}" = "--test" ]; then
  command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
  command -v pdftoppm >/dev/null 2>&1 || missing="$missing poppler-utils"
fi
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing:$missing"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
else
  echo "please install:$missing (Debian/Ubuntu: sudo apt-get install$missing)" >&2
  case "$missing" in *redis-server*) exit 1 ;; esac
fi
