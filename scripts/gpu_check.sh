#!/usr/bin/env bash
# The one GPU check: runs the GPU tests and the benchmarks on a CUDA machine and prints short tables last.
#
#   bash scripts/gpu_check.sh [STAGE ...]     STAGE: env | tests | meter | harness | gemm | engine | kernelbench | all (default: all)
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
# The engine stage: by default the benchmark-scale subset (scripts/gpu_engine_check.py BENCHMARK_SUBSET:
# 1-8 GiB memory-bound tensors, training-mode batch norm, deep CNNs, recurrent stacks, a GPT block), four
# at a time (the harness's device lock keeps each timing alone on the GPU). `ENGINE_ARGS="problems/a.py ..."`
# runs other problems; `ENGINE_ARGS= bash scripts/gpu_check.sh engine` runs all 100.
if want engine; then
  python3 scripts/gpu_engine_check.py --jobs "${ENGINE_JOBS:-4}" --out-root "${ENGINE_OUT:-/tmp/qimeng-engine}" \
    ${ENGINE_ARGS---benchmark-subset} 2>&1 | tee "$OUT/engine.log" | tail -n 80
  summary+=("engine check: exit ${PIPESTATUS[0]}")
fi
# The engine stage's files again under KernelBench's timing protocol (mean of 100 CUDA-event trials, no L2 flush).
if want kernelbench; then
  python3 scripts/gpu_kernelbench_check.py "${ENGINE_OUT:-/tmp/qimeng-engine}" 2>&1 | tee "$OUT/kernelbench.log" | tail -n 30
  summary+=("kernelbench protocol: exit ${PIPESTATUS[0]}")
fi
echo; echo "== gpu_check summary"; printf '%s\n' "${summary[@]}"
