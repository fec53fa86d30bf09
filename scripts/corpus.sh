#!/usr/bin/env bash
# Fetches a corpus of real documents: `scripts/corpus.sh LIST DIR` downloads the Debian
# packages LIST names (one a line, # comments) from the archive apt is configured with,
# unpacks them under DIR/files, and writes DIR/packages (each package=version as
# fetched) and DIR/documents (every regular file, one path a line). Idempotent: a
# package already fetched is not fetched again.
set -euo pipefail
list=$1
dir=$2
mkdir -p "$dir/debs" "$dir/files"
packages=$(grep -v '^\s*#' "$list" | grep -v '^\s*$')
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
# A machine whose package lists were never fetched knows no package yet.
for package in $packages; do
  if ! apt-cache show "$package" >/dev/null 2>&1; then
    $SUDO apt-get update -qq
    break
  fi
done
(
  cd "$dir/debs"
  for package in $packages; do
    if ! ls "${package}"_*.deb >/dev/null 2>&1; then
      # apt's sandbox user cannot write here; the download is checked against the
      # archive's signed index all the same.
      apt-get download -q=2 -o APT::Sandbox::User=root "$package"
      dpkg-deb -x "${package}"_*.deb ../files
    fi
  done
)
for package in $packages; do
  deb=$(ls "$dir/debs/${package}"_*.deb)
  echo "$package=$(dpkg-deb -f "$deb" Version)"
done > "$dir/packages"
find "$dir/files" -type f | sort > "$dir/documents"
echo "$(wc -l < "$dir/documents") files from $(wc -l < "$dir/packages") packages in $dir"
