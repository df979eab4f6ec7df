#!/usr/bin/env bash
# Paper-length runs for a lent GPU (issue 12), as one time-boxed script (about 9 minutes):
#   1. VGG-16 `crimp` at 88.25% sparsity: 200 bf16 float epochs + a 40-epoch second stage,
#      100 Monte Carlo chips at sigma 0 and 0.3 (compensation on);
#   2. ResNet-56: one 182-epoch float model, then `crimp` and `qp` (50%) reusing it, each with
#      a 30-epoch second stage and 100 chips at sigma 0 and 0.3 (compensation on).
# Every run writes its summary.json as each analysis step finishes, so a run cut by its time
# box keeps what it measured (marked partial).
#   bash launch/gpu_paper.sh OUTDIR [TIME_SCALE]
# Writes OUTDIR/gpu_paper.tgz (summaries, metrics, figures, logs; no checkpoints) and
# OUTDIR/status.txt. VGG_CONFIG / R56_CONFIG / RUN_OVERRIDES replace the defaults (the tests
# run it on CPU with experiments/configs/tiny_crimp.py in seconds).
set -u
out=${1:?usage: gpu_paper.sh OUTDIR [TIME_SCALE]}
k=${2:-1}  # multiplies every time box
runs=${RUNS_DIR:-runs/gpu_paper}
mkdir -p "$runs" "$out"
export PYTHONUNBUFFERED=1
export CRIMP_DATA_DIR=${CRIMP_DATA_DIR:-$PWD/.data}
py=${PYTHON:-python3}
vgg=${VGG_CONFIG:-experiments/configs/vgg16_cifar10_crimp.py}
r56=${R56_CONFIG:-experiments/configs/resnet56_cifar10_crimp.py}
mc="--config.evaluate.sigmas=(0.0,0.3) --config.evaluate.compensation=('on',) --config.evaluate.batch_size=2000"
(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || echo "no nvidia-smi") \
  > "$runs/status.txt" 2>&1

run() {  # name seconds config [overrides...]
  local name=$1 box=$2 cfg=$3 t0=$SECONDS
  shift 3
  # shellcheck disable=SC2086  # overrides are separate words
  timeout $(( box * k )) $py -m experiments.run --config="$cfg" --workdir="$runs/$name" \
    $mc ${RUN_OVERRIDES:-} "$@" > "$runs/$name.log" 2>&1
  echo "$name rc=$? $(( SECONDS - t0 ))s" | tee -a "$runs/status.txt"
}
seed_fp() {  # copy the finished float stage of $1 into workdir $2
  mkdir -p "$runs/$2/checkpoints"
  [ -d "$runs/$1/checkpoints/fp" ] && cp -r "$runs/$1/checkpoints/fp" "$runs/$2/checkpoints/"
}
run vgg16_crimp 210 "$vgg:crimp,gpu_paper"
run resnet56_fp 190 "$r56:fp,gpu_paper"
seed_fp resnet56_fp resnet56_crimp
run resnet56_crimp 100 "$r56:crimp,gpu_paper"
seed_fp resnet56_fp resnet56_qp
run resnet56_qp 80 "$r56:qp,gpu_paper"
tar czf "$out/gpu_paper.tgz" -C "$runs" --exclude='checkpoints' --exclude='tb' \
  --exclude='*.npz' . && cp "$runs/status.txt" "$out/" && ls -la "$out"
