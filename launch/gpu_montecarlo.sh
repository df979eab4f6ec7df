#!/usr/bin/env bash
# The GPU results issue 5 still needs, as one time-boxed script for a lent GPU:
#   1. ResNet-56 CRIMP (short GPU schedule cut to 20 + 8 epochs) with 100 Monte Carlo chips,
#      compensation off and on (curves 'adaptation' and 'both');
#   2. the Monte Carlo throughput of VGG-16 and ResNet-56, vmap and loop, 16 chips over the
#      whole 10,000-image test set, against plain inference in the same run.
#   bash launch/gpu_montecarlo.sh OUTDIR [TIME_SCALE]
# Writes OUTDIR/bench.jsonl and OUTDIR/gpu_montecarlo.tgz (summaries, metrics, figures, logs;
# no checkpoints). RUN_CONFIG / BENCH_CONFIG / BENCH_MODELS / RUN_OVERRIDES / BENCH_FLAGS
# replace the defaults (tests run it on CPU with quickstart.py:tiny in seconds).
set -u
out=${1:?usage: gpu_montecarlo.sh OUTDIR [TIME_SCALE]}
k=${2:-1}  # multiplies every time box
runs=${RUNS_DIR:-runs/gpu_montecarlo}
mkdir -p "$runs" "$out"
export PYTHONUNBUFFERED=1
export CRIMP_DATA_DIR=${CRIMP_DATA_DIR:-$PWD/.data}
py=${PYTHON:-python3}
run_config=${RUN_CONFIG:-experiments/configs/resnet56_cifar10_crimp.py:crimp,gpu}
# (in double quotes: inside ${VAR:-default} bash would strip the single quotes of the tuple)
default_overrides="--config.train.epochs=20 --config.crimp.prune_epochs=5 --config.crimp.ramp_epochs=3 --config.evaluate.compensation=('off','on')"
run_overrides=${RUN_OVERRIDES:-$default_overrides}
bench_config=${BENCH_CONFIG:-experiments/configs/vgg16_cifar10.py:gpu}
bench_models=${BENCH_MODELS:-vgg16,resnet56}
bench_flags=${BENCH_FLAGS:---batches=500 --chips=16 --mc_images=10000}
(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || echo "no nvidia-smi") \
  > "$runs/device.txt" 2>&1

t0=$SECONDS
# shellcheck disable=SC2086  # overrides are separate words
timeout $(( 420 * k )) $py -m experiments.run --config="$run_config" --workdir="$runs/run" \
  $run_overrides > "$runs/run.log" 2>&1
echo "run rc=$? $(( SECONDS - t0 ))s" | tee -a "$runs/status.txt"
t0=$SECONDS
# shellcheck disable=SC2086
timeout $(( 150 * k )) $py -m experiments.bench --config="$bench_config" --models="$bench_models" \
  --what=mc $bench_flags --out="$out/bench.jsonl" > "$runs/bench.log" 2>&1
echo "bench rc=$? $(( SECONDS - t0 ))s" | tee -a "$runs/status.txt"
tar czf "$out/gpu_montecarlo.tgz" -C "$runs" --exclude='checkpoints' --exclude='tb' \
  --exclude='*.npz' . && ls -la "$out"
