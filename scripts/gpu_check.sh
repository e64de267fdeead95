#!/usr/bin/env bash
# The one GPU check: runs the GPU tests and the benchmarks on a CUDA machine and prints short tables last.
#
#   bash scripts/gpu_check.sh [STAGE ...]     STAGE: env | tests | meter | harness | gemm | engine | all (default: all)
#
# Runs from source (PYTHONPATH=$PWD); installs nothing. Logs and JSON go under $OUT when it is set
# (the device tool's output folder), else under ./out.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
OUT="${OUT:-$PWD/out}"; mkdir -p "$OUT"
stages=("${@:-all}")
want() { local s; for s in "${stages[@]}"; do [[ $s == all || $s == "$1" ]] && return 0; done; return 1; }
summary=()

if want env; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c 'import torch, triton; print("torch", torch.__version__, "triton", triton.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name())'
fi
if want tests; then
  python3 -m pytest -q -m gpu tests -p no:cacheprovider 2>&1 | tee "$OUT/gpu_tests.log" | tail -n 25
  summary+=("gpu tests: $(tail -n 1 "$OUT/gpu_tests.log")")
fi
if want meter; then
  python3 scripts/gpu_meter_check.py 2>&1 | tee "$OUT/meter.log"
  summary+=("meter check: exit ${PIPESTATUS[0]}")
fi
if want harness; then
  # the planted cheats on the GPU, then the trusted path's cost on a 1 GiB-per-tensor problem
  python3 scripts/gpu_harness_check.py --size-gib "${HARNESS_GIB:-1}" 2>&1 | tee "$OUT/harness.log" | tail -n 40
  summary+=("harness check: exit ${PIPESTATUS[0]}")
fi
if want gemm; then
  # the GEMM and attention templates against cuBLAS, SDPA and torch.compile, within GEMM_BUDGET seconds
  python3 scripts/gpu_gemm_bench.py --budget "${GEMM_BUDGET:-150}" --max-configs "${GEMM_CONFIGS:-4}" 2>&1 \
    | tee "$OUT/gemm.log" | tail -n 40
  summary+=("gemm bench: exit ${PIPESTATUS[0]}")
fi
# Two or three problems per family (the set of docs/PERFORMANCE.md), four at a time (the harness's device
# lock keeps each timing alone on the GPU); `ENGINE_ARGS= bash scripts/gpu_check.sh engine` runs all 83.
ENGINE_DEFAULT="problems/activation/01_relu.py problems/activation/13_sigmoid.py problems/activation/15_exp_log.py
  problems/elementwise/01_unary_math.py problems/elementwise/07_transposed_mul_add.py
  problems/fused/01_silu_mul_add.py problems/fused/04_residual_add_rms_norm.py problems/fused/06_sigmoid_gate_sum_dims_0_2.py
  problems/softmax/01_softmax_last_dim.py problems/softmax/02_softmax_middle_dim.py problems/softmax/06_softmax_of_transpose.py
  problems/norm/01_layer_norm.py problems/norm/03_group_norm.py
  problems/reduction/01_sum_middle_dim_keepdim.py problems/reduction/05_amax_spatial_keepdim.py
  problems/reduction/09_var_unbiased_keepdim.py problems/reduction/10_std_dims_0_2.py
  problems/loss/04_cross_entropy.py problems/loss/07_cosine_similarity.py
  problems/scan/01_cumsum_last_dim.py problems/scan/02_cumsum_middle_dim.py
  problems/gemm_epilogue/01_linear_bias_gelu.py problems/conv_epilogue/02_conv2d_batchnorm_silu.py
  problems/attention/02_sdpa_manual_causal.py"
if want engine; then
  python3 scripts/gpu_engine_check.py --jobs "${ENGINE_JOBS:-4}" --out-root "${ENGINE_OUT:-/tmp/qimeng-engine}" \
    ${ENGINE_ARGS-$ENGINE_DEFAULT} 2>&1 | tee "$OUT/engine.log" | tail -n 80
  summary+=("engine check: exit ${PIPESTATUS[0]}")
fi
echo; echo "== gpu_check summary"; printf '%s\n' "${summary[@]}"
