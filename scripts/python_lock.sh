#!/usr/bin/env bash
# Writes tests/requirements.lock again from tests/requirements.txt: every package the
# wanted ones pull in, at the exact version pip resolves today, each with the SHA-256 of
# the file make setup will install (pip then refuses any other). Run it to move a
# version: change tests/requirements.txt, run this, and commit both files.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q --disable-pip-version-check -r tests/requirements.txt
"$work/venv/bin/pip" freeze --exclude-editable > "$work/frozen"
"$work/venv/bin/pip" download -q --disable-pip-version-check --no-deps -r "$work/frozen" -d "$work/files"
python3 - "$work/frozen" "$work/files" > tests/requirements.lock <<'PY'
import hashlib, os, re, sys
frozen, files = sys.argv[1], sys.argv[2]
def key(name, version):
    return re.sub(r"[-_.]+", "_", name).lower(), version
found = {}
for f in os.listdir(files):
    name, version = re.match(r"(.+?)-([0-9][^-]*?)(?:-.*\.whl|\.tar\.gz|\.zip)$", f).groups()
    found[key(name, version)] = os.path.join(files, f)
print("# Every Python package the tests, the demo and the benchmarks use, at the exact version")
print("# and file make setup installs (--require-hashes, --no-deps). Written by")
print("# scripts/python_lock.sh from tests/requirements.txt, which says what is wanted.")
for line in open(frozen).read().split("\n"):
    if "==" in line:
        name, version = line.split("==")
        with open(found[key(name, version)], "rb") as f:
            print(f"{name}=={version} --hash=sha256:{hashlib.sha256(f.read()).hexdigest()}")
PY
echo "tests/requirements.lock: $(grep -c '==' tests/requirements.lock) packages"
