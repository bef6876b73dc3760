#!/usr/bin/env bash
# The GPU check, as one short script for a lent device machine (see bench/gpu-check.ts). Installs nothing.
# Needs: node_modules from `npm ci` (carried over), CUDA 12 + cuDNN 9 on the library path, and ONNX Runtime's
# CUDA provider libraries in node_modules/onnxruntime-node/bin/napi-v6/linux/x64/ (see README "GPU").
set -euo pipefail
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || echo "nvidia-smi not found"
ls node_modules/onnxruntime-node/bin/napi-v6/linux/x64/ || true
exec npx tsx bench/gpu-check.ts "$@"
