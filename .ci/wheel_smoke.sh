#!/usr/bin/env bash
# The package as a user gets it: build the wheel, install it into a fresh venv (no source tree
# on the path), and run phantom -> prepare -> train (1 epoch) -> evaluate -> report on a tiny
# corpus from a folder outside the checkout. Usage: .ci/wheel_smoke.sh [WORKDIR] (default: a
# temporary folder, removed when the run passes). About 2.5 minutes here, a third of it pip.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
TORCH=${TORCH:-torch==2.13.0}   # the local CPU wheel; an unpinned torch pulls CUDA builds
WORK=${1:-$(mktemp -d -t clip2clinic-wheel-XXXXXX)}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
case "$WORK/" in "$PWD"/*) echo "wheel_smoke: $WORK is inside the checkout" >&2; exit 2 ;; esac
started=$SECONDS
step() { echo "[wheel-smoke $((SECONDS - started))s] $*"; }

step "build the wheel"
rm -rf "$WORK/dist"
"$PY" -m pip wheel -q --no-deps -w "$WORK/dist" .
wheel=$(ls "$WORK"/dist/clip2clinic-*.whl)

step "install $(basename "$wheel") into a fresh venv"
rm -rf "$WORK/venv"
"$PY" -m venv "$WORK/venv"
bin="$WORK/venv/bin"
"$bin/pip" install -q --no-compile "$TORCH"   # no-compile: only what runs gets compiled
"$bin/pip" install -q --no-compile "${wheel}[embedded]"

cd "$WORK"
export MPLCONFIGDIR="$WORK/mplconfig"   # a fresh font cache, as on a clean CI box
"$bin/python" - <<'PY'
import clip2clinic
import sys
from pathlib import Path

where = Path(clip2clinic.__file__).resolve()
assert Path(sys.prefix).resolve() in where.parents, f"clip2clinic imported from {where}"
print(f"clip2clinic from {where.parent}")
PY
c2c="$bin/clip2clinic"
rm -rf phantom prepared run summary*

step "phantom"
"$c2c" phantom --out phantom --studies 60 --image-size 64 --quiet
step "prepare"
"$c2c" prepare mimic --root phantom --out prepared/manifest.parquet --image-size 32 --workers 1
step "train (embedded preset, n_g_dtcg, 1 epoch, a tiny model)"
"$c2c" train --preset embedded --variant n_g_dtcg --manifest prepared/manifest.parquet --out run \
    --set train.epochs=1 --set data.batch_size=20 --set train.progress=false \
    --set "model.image.config={image_size: 32, patch_size: 4, embed_dim: 8, depths: [1, 1], \
num_heads: [1, 2], window_size: 4}" \
    --set "model.text.head={width: 16, layers: 1, heads: 2, ff_dim: 32}" \
    --set model.embed_dim=32 --set model.graph.hidden_dim=16
step "evaluate"
"$c2c" evaluate --checkpoint run --data phantom=prepared/manifest.parquet --n-boot 20 --quiet
step "report"
"$c2c" report run --out summary.csv
test -s summary.csv
head -c 400 summary.csv; echo
if [ -z "${1:-}" ]; then rm -rf "$WORK"; fi   # a temporary folder goes; one you named stays
step "passed"
