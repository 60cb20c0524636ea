#!/usr/bin/env bash
# GPU check of issue #6: CLIP ViT-L-14 in bfloat16 on one NVIDIA GPU, measured
# side by side (model-only, the naive open_clip README loop, skacd's
# CLIPFeaturizer.transform) by benchmarks/throughput.py, on 256-px JPEGs.
# Goal: skacd end to end >= 2000 images/s on one H100 (6x the 312 images/s per
# A100 that clip-retrieval documents).
#
#   bash benchmarks/gpu_check.sh            # from the repository root
#
# Environment:
#   OUT        write the JSON (and a log) there; default benchmarks/results
#   PYTHON     the interpreter (default python3); it needs torch with CUDA,
#              torchvision, open_clip_torch, scikit-learn, pillow, psutil
#   IMAGES     a folder of JPEGs to use as they are (default: 256x256 JPEGs
#              made from ../shared/data/sd-coco if present, else from
#              scikit-learn's two sample photos, into $TMPDIR)
#   N_IMAGES   images per repetition (default 8192; the folder is cycled)
#   BATCH_SIZE default 256
#   REPEATS    default 3 (after 1 warm-up)
#   MODEL      default clip:ViT-L-14 (random weights: speed does not depend
#              on them)
#
# Packages missing on the GPU machine (open_clip_torch, ftfy, wcwidth) can be
# carried as wheels in .whl/ (see the device tool's README): they are
# installed into /tmp/site when that folder exists.
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
OUT_DIR=${OUT:-benchmarks/results}
N_IMAGES=${N_IMAGES:-8192}
BATCH_SIZE=${BATCH_SIZE:-256}
REPEATS=${REPEATS:-3}
MODEL=${MODEL:-clip:ViT-L-14}
export PYTHONUNBUFFERED=1

fail() { echo "gpu_check.sh: $*" >&2; exit 2; }

# 1. An NVIDIA GPU, seen by torch.
command -v nvidia-smi >/dev/null 2>&1 \
  || fail "nvidia-smi not found: this check needs a machine with one NVIDIA GPU."
nvidia-smi -L || fail "nvidia-smi cannot list a GPU."
"$PYTHON" - <<'EOF' || fail "torch cannot use the GPU (see above)."
import sys
import torch
if not torch.cuda.is_available():
    sys.exit(f"torch {torch.__version__} (CUDA build: {torch.version.cuda}) sees no GPU")
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, "
      f"{torch.cuda.device_count()} GPU(s); using {torch.cuda.get_device_name(0)}")
EOF

# 2. Python packages: carried wheels, then skacd from this checkout.
if compgen -G ".whl/*.whl" >/dev/null; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
    --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
"$PYTHON" -c "import open_clip, skacd" \
  || fail "cannot import open_clip or skacd (carry open_clip_torch, ftfy, wcwidth as wheels in .whl/)."

# 3. 256-px JPEGs.
if [[ -z "${IMAGES:-}" ]]; then
  IMAGES=$(mktemp -d "${TMPDIR:-/tmp}/skacd-gpu-images.XXXX")
  "$PYTHON" - "$IMAGES" <<'EOF'
import glob, os, sys
import numpy as np
from PIL import Image

out = sys.argv[1]
sources = sorted(glob.glob("../shared/data/sd-coco/*/*/*.jpg"))
if sources:
    for i, path in enumerate(sources):
        Image.open(path).convert("RGB").resize((256, 256), Image.BICUBIC).save(
            os.path.join(out, f"{i:05d}.jpg"), quality=95)
    print(f"{len(sources)} 256x256 JPEGs (q95) from ../shared/data/sd-coco in {out}")
else:
    from sklearn.datasets import load_sample_images
    rng = np.random.default_rng(0)
    photos = load_sample_images().images  # two 427x640 photos
    for i in range(512):
        photo = photos[i % 2]
        top, left = rng.integers(0, 427 - 256), rng.integers(0, 640 - 256)
        crop = photo[top:top + 256, left:left + 256]
        Image.fromarray(crop).save(os.path.join(out, f"{i:05d}.jpg"), quality=95)
    print(f"512 256x256 JPEG crops (q95) of scikit-learn's sample photos in {out}")
EOF
fi

# 4. The benchmark: bf16 autocast, model-only / naive / skacd interleaved.
mkdir -p "$OUT_DIR"
"$PYTHON" benchmarks/throughput.py \
  --model "$MODEL" --device cuda --precision bfloat16 --compare \
  --images "$IMAGES" --n-images "$N_IMAGES" --batch-size "$BATCH_SIZE" \
  --repeats "$REPEATS" --warmup 1 \
  --json "$OUT_DIR/gpu-check-$(echo "$MODEL" | tr ':/' '--')-bf16.json" \
  2>&1 | tee "$OUT_DIR/gpu-check.log"
