#!/usr/bin/env bash
# The device check (bench/gpu.py): on a CUDA machine, the SD 1.5-size model raw and served,
# within 8 minutes, written to bench/results-gpu.md. Without CUDA, or with --cpu-small, the
# same on the CPU at a small size (it shows the script works; the figures are no GPU's).
#
# It downloads nothing: the model is built from configs with random weights, and every
# service (Redis, SeaweedFS, frp) is the one the project's setup installed. From a fresh
# clone it runs `make setup` first; on a GPU box install the CUDA torch into .venv as
# frp/README.md (step 5a) says, or the CPU wheel is what you measure.
#
# Usage: bench/gpu.sh [--cpu-small] [--budget-s 480] [--out bench/results-gpu.md]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ] || [ ! -f .venv/.installed ]; then
    make setup
fi
export HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
# The budget is the script's own; this only stops a hung run.
exec timeout 600 .venv/bin/python bench/gpu.py "$@"
