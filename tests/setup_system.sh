#!/usr/bin/env bash
# System packages the tests need beyond PyPI, from Debian's packages:
#   chromium + chromium-driver  for the map pages in a real browser (issue 5)
#   a Java 17 runtime            for the Spark local-mode test (issue 8)
#   fonts-noto-cjk               a CJK font, so the browser tests' screenshots show Chinese (issue 15)
# Never fatal: what cannot be installed makes its tests skip with a visible reason.
set -u
need=()
command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || need+=(chromium chromium-driver)
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
{ command -v fc-list >/dev/null 2>&1 && [ -n "$(fc-list :lang=zh family 2>/dev/null)" ]; } || need+=(fonts-noto-cjk)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "setup_system: not root or no apt-get; missing ${need[*]}: their tests will skip"
  exit 0
fi
echo "setup_system: installing ${need[*]} from Debian's packages ..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null 2>&1 || echo "setup_system: apt-get update failed"
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 \
  || echo "setup_system: could not install ${need[*]}: their tests will skip"
exit 0
