#!/usr/bin/env bash
# Hardware checks for a real GPU node (the steps Molecule and CI skip):
#   driver loaded, nvidia-smi, NVML facts, the notebook's GPU line, a container
#   with the NVIDIA runtime seeing the GPU, TensorFlow in the notebook image seeing it,
#   for Podman a CDI specification and a container given the GPU through it, and where
#   Slurm is installed a --gres=gpu:1 job that gets exactly one GPU (slurm_gres_check.sh).
# Usage: tests/gpu/verify_gpu_node.sh [notebook-image]   (EXPECTED_GPUS=N to require N)
# Prints one line per check and "N passed, N failed, N skipped"; exits 1 on a failure.
set -uo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
IMAGE="${1:-${NOTEBOOK_IMAGE:-gxnb/jupyterlab-ai:gpu}}"
EXPECTED="${EXPECTED_GPUS:-1}"
PY="${PYTHON:-python3}"
passed=0; failed=0; skipped=0

report() {  # report STATUS NAME DETAIL
  printf '%-5s %s%s\n' "$1" "$2" "${3:+: $3}"
  case "$1" in PASS) passed=$((passed + 1)) ;; FAIL) failed=$((failed + 1)) ;; SKIP) skipped=$((skipped + 1)) ;; esac
}

# 1 driver
if [ -r /proc/driver/nvidia/version ]; then
  report PASS "kernel driver loaded" "$(head -1 /proc/driver/nvidia/version | sed 's/  */ /g' | cut -c1-90)"
elif nvidia-smi >/dev/null 2>&1; then
  report PASS "kernel driver loaded" "(no /proc/driver/nvidia here; nvidia-smi talks to the driver)"
else
  report FAIL "kernel driver loaded" "no /proc/driver/nvidia/version and nvidia-smi fails"
fi

# 2 nvidia-smi
if out="$(nvidia-smi -L 2>&1)"; then
  report PASS "nvidia-smi lists GPUs" "$(echo "$out" | head -1)"
else
  report FAIL "nvidia-smi lists GPUs" "$out"
fi

# 3 NVML facts (the gpu_facts role's fact script)
facts="$("$PY" "$here/roles/gpu_facts/files/gpu.fact" 2>&1)"
count="$(echo "$facts" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["count"])' 2>/dev/null || echo error)"
if [ "$count" = error ]; then
  report FAIL "NVML facts" "$facts"
elif [ "$count" -ge "$EXPECTED" ]; then
  report PASS "NVML facts (count >= $EXPECTED)" "$(echo "$facts" | cut -c1-220)"
else
  report FAIL "NVML facts (count >= $EXPECTED)" "$facts"
fi

# 4 the notebook's start-up GPU line
line="$(PYTHONPATH="$here/container" "$PY" -m gxnb.accelerator 2>&1)"
case "$line" in GPU:*) report PASS "notebook GPU line" "$line" ;; *) report FAIL "notebook GPU line" "$line" ;; esac

# 5, 6 containers with the NVIDIA runtime
if ! command -v docker >/dev/null || ! docker info >/dev/null 2>&1; then
  report SKIP "container sees the GPU" "no Docker engine on this host"
  report SKIP "TensorFlow in $IMAGE sees the GPU" "no Docker engine on this host"
else
  if out="$(docker run --rm --gpus all --entrypoint nvidia-smi "$IMAGE" -L 2>&1)"; then
    report PASS "container sees the GPU" "$(echo "$out" | head -1)"
  else
    report FAIL "container sees the GPU" "$(echo "$out" | tail -3)"
  fi
  if out="$(docker run --rm --gpus all "$IMAGE" python -c \
      'import tensorflow as tf; g=tf.config.list_physical_devices("GPU"); print(len(g)); assert g' 2>&1)"; then
    report PASS "TensorFlow in $IMAGE sees the GPU" "$(echo "$out" | tail -1) GPU(s)"
  else
    report FAIL "TensorFlow in $IMAGE sees the GPU" "$(echo "$out" | tail -3)"
  fi
fi

# 7, 8 the Podman alternative: a CDI specification from the driver, a container given the GPU by it
if ! command -v nvidia-ctk >/dev/null; then
  report SKIP "CDI specification (Podman)" "no nvidia-ctk (nvidia-container-toolkit) on this host"
else
  spec="$(mktemp --suffix=.yaml)"
  if out="$(nvidia-ctk cdi generate --output="$spec" 2>&1)" && grep -q 'kind: nvidia.com/gpu' "$spec"; then
    report PASS "CDI specification (Podman)" "kind nvidia.com/gpu, $(grep -cE '^[[:space:]]*- name:' "$spec") devices"
  else
    report FAIL "CDI specification (Podman)" "$(echo "$out" | tail -3)"
  fi
  rm -f "$spec"
fi
if ! command -v podman >/dev/null || { [ ! -e /etc/cdi/nvidia.yaml ] && [ ! -e /var/run/cdi/nvidia.yaml ]; }; then
  report SKIP "Podman container sees the GPU" "no podman or no CDI specification in /etc/cdi on this host"
elif out="$(podman run --rm --device nvidia.com/gpu=all --entrypoint nvidia-smi "$IMAGE" -L 2>&1)"; then
  report PASS "Podman container sees the GPU" "$(echo "$out" | head -1)"
else
  report FAIL "Podman container sees the GPU" "$(echo "$out" | tail -3)"
fi

# 9 Slurm's allocation: a --gres=gpu:1 job on a one-node cluster gets exactly one of these GPUs
line="$("$here/tests/gpu/slurm_gres_check.sh")"
report "${line%% *}" "${line#* }"

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
