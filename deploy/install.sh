#!/usr/bin/env bash
# Installs the Debian packages the build needs (deploy/debian-packages.txt), then
# builds build/frikortd, build/frikortctl and build/frikort.pb.
# Run it from a root shell (no sudo needed) or as a user who may use sudo: only
# the apt-get step runs as root, through sudo when the caller is not root; the
# build runs as the caller.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ]; then
  as_root() { "$@"; }
elif command -v sudo >/dev/null 2>&1; then
  as_root() { sudo "$@"; }
else
  echo "deploy/install.sh: installing packages needs root, and sudo is not installed: run it from a root shell" >&2
  exit 1
fi
as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
  $(cat deploy/debian-packages.txt)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j "$(nproc)" --target frikortd frikortctl frikort_descriptor_set
