#!/usr/bin/env bash
# The prepared GPU session behind results/: CRIMP on VGG-16 and ResNet-56 with the short GPU
# schedule (float stage, CRIMP stage, integer engine, 100 Monte Carlo chips, cost), then the
# benchmarks. Every run is time-boxed; summaries are written as each step finishes.
#   bash launch/gpu_results.sh OUTDIR [TIME_SCALE]
# Writes OUTDIR/gpu_results.tgz (summaries, metrics, figures, logs) and OUTDIR/bench.jsonl.
set -u
out=${1:?usage: gpu_results.sh OUTDIR}
k=${2:-1}  # multiplies every time box
runs=${RUNS_DIR:-runs/gpu_results}
mkdir -p "$runs" "$out"
export PYTHONUNBUFFERED=1
export CRIMP_DATA_DIR=${CRIMP_DATA_DIR:-$PWD/.data}
py=${PYTHON:-python3}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader > "$runs/device.txt" 2>&1

run() {  # name seconds config
  local t0=$SECONDS
  timeout $(( $2 * k )) $py -m experiments.run --config="$3" --workdir="$runs/$1" \
    > "$runs/$1.log" 2>&1
  echo "$1 rc=$? $(( SECONDS - t0 ))s" | tee -a "$runs/status.txt"
}
run vgg16_crimp 190 experiments/configs/vgg16_cifar10_crimp.py:crimp,gpu
run resnet56_crimp 190 experiments/configs/resnet56_cifar10_crimp.py:crimp,gpu
t0=$SECONDS
timeout $(( 50 * k )) $py -m experiments.bench --config=experiments/configs/vgg16_cifar10.py:gpu \
  --models=vgg16,resnet56 --batches=512 --steps=10 --what=plain,crimp --out="$out/bench.jsonl" \
  > "$runs/bench.log" 2>&1
echo "bench rc=$? $(( SECONDS - t0 ))s" | tee -a "$runs/status.txt"
tar czf "$out/gpu_results.tgz" -C "$runs" --exclude='checkpoints' --exclude='tb' \
  --exclude='*.npz' . && ls -la "$out"
