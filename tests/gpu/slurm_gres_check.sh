#!/usr/bin/env bash
# Slurm's GPU allocation on this host's GPUs: a one-node cluster (munged, slurmctld, slurmd from
# Debian's packages) in a temporary folder, with this host's /dev/nvidiaN files as GRES; a
# --gres=gpu:1 job must get exactly one GPU (SLURM_JOB_GPUS, CUDA_VISIBLE_DEVICES, nvidia-smi),
# and the job nodes' helper must turn it into docker run arguments for that GPU alone.
# Usage: tests/gpu/slurm_gres_check.sh   (GPU_DEVICE_GLOB=/dev/nvidia[0-9]* by default, GPU_DOCKER_ARGS_HELPER)
# Prints one line, "PASS|FAIL|SKIP <what>: <detail>"; exits 0 on PASS or SKIP, 1 on FAIL.
set -uo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
NAME="Slurm --gres=gpu:1 job gets one GPU"

say() { echo "$1 $NAME: $2"; [ "$1" != FAIL ]; exit $?; }

missing=""
for program in munged slurmctld slurmd sbatch sinfo; do
  command -v "$program" >/dev/null || missing="$missing $program"
done
[ -z "$missing" ] || say SKIP "not installed here:$missing (Debian: munge slurmctld slurmd slurm-client)"
[ "$(id -u)" = 0 ] || say SKIP "needs root (the daemons run as root in a temporary folder)"
# shellcheck disable=SC2206 # the glob is meant to expand
devices=(${GPU_DEVICE_GLOB:-/dev/nvidia[0-9]*})
[ -e "${devices[0]}" ] || say SKIP "no GPU device files (${GPU_DEVICE_GLOB:-/dev/nvidia[0-9]*})"

# Not /tmp: slurmd runs the job script from its spool folder, and /tmp is often mounted noexec.
dir="$(mktemp -d /var/tmp/slurm-gres-check.XXXXXX)"
pids=()
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() { kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
host="$(hostname -s)"
port=$((20000 + RANDOM % 20000))
mkdir -p "$dir/state" "$dir/spool"
head -c 1024 /dev/urandom > "$dir/munge.key" && chmod 0400 "$dir/munge.key"
for device in "${devices[@]}"; do echo "Name=gpu File=$device"; done > "$dir/gres.conf"
cat > "$dir/slurm.conf" <<EOF
ClusterName=gpucheck
SlurmctldHost=$host
SlurmctldAddr=127.0.0.1
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
AuthInfo=socket=$dir/munge.sock
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
GresTypes=gpu
ReturnToService=2
MpiDefault=none
NodeName=$host NodeAddr=127.0.0.1 CPUs=1 Gres=gpu:${#devices[@]} State=UNKNOWN
PartitionName=check Nodes=$host Default=YES State=UP
EOF
export SLURM_CONF="$dir/slurm.conf"

munged --force --key-file="$dir/munge.key" --socket="$dir/munge.sock" --pid-file="$dir/munged.pid" \
  --log-file="$dir/munged.log" --seed-file="$dir/munged.seed" || say FAIL "munged: $(tail -2 "$dir/munged.log")"
pids+=("$(cat "$dir/munged.pid")")
slurmctld -D -i > /dev/null 2>&1 & pids+=($!)
slurmd -D -N "$host" > /dev/null 2>&1 & pids+=($!)
for _ in $(seq 60); do
  [ "$(sinfo -h -o %T 2>/dev/null)" = idle ] && break
  sleep 1
done
state="$(sinfo -h -o '%T %G' 2>&1)"
case "$state" in idle*) ;; *) say FAIL "node not idle after 60 s ($state): $(tail -3 "$dir/slurmd.log" "$dir/slurmctld.log")" ;; esac

# The nodes' helper: GPU_DOCKER_ARGS_HELPER, else where the slurm role installs it, else this checkout's copy.
helper="${GPU_DOCKER_ARGS_HELPER:-$(command -v slurm-job-gpus-docker-args ||
  echo "$here/roles/slurm/files/slurm-job-gpus-docker-args")}"
# shellcheck disable=SC2016 # expanded in the job
job='echo "gpus=$SLURM_JOB_GPUS cuda=$CUDA_VISIBLE_DEVICES"
if command -v nvidia-smi >/dev/null; then echo "seen=$(nvidia-smi -L -i "$SLURM_JOB_GPUS" | wc -l)"; fi
echo "docker=$(sh '"$helper"' | tr "\n" " ")"'
if ! sbatch --wait --quiet --gres=gpu:1 --time=2 --output="$dir/job.out" --wrap "$job" 2>"$dir/sbatch.err"; then
  say FAIL "job failed: $(cat "$dir/sbatch.err" "$dir/job.out" 2>/dev/null | tail -3)"
fi
out="$(tr '\n' ' ' < "$dir/job.out")"
gpus="$(sed -n 's/^gpus=\([^ ]*\).*/\1/p' "$dir/job.out")"
case "$gpus" in
  '' | *,*) say FAIL "SLURM_JOB_GPUS is not one index: $out" ;;
esac
grep -q "^seen=" "$dir/job.out" && ! grep -q "^seen=1$" "$dir/job.out" && say FAIL "nvidia-smi saw another count: $out"
grep -qE "^docker=(--gpus device=$gpus|-e CUDA_VISIBLE_DEVICES=$gpus) *$" "$dir/job.out" || say FAIL "the docker arguments do not name GPU $gpus: $out"
say PASS "$out"
