#!/usr/bin/env bash
# The CPU accuracy benchmark (experiments/configs/resnet20_proxy.py): ResNet-20 on 5,000
# class-balanced training images, the whole 10,000-image test set. One float model shared by
# every quantized run, the float reference fp_long trained for the same total epochs, then
# q, qp50, qp80, qv, crimp (each with 20 Monte Carlo chips at sigma 0, 0.3, 0.5, compensation
# off and on), and the table. About 75 minutes on 2 CPU cores (measured 2026-12-02).
#   bash launch/accuracy_proxy.sh [RUNROOT] [OUT]   (defaults: runs/resnet20_proxy,
#                                                    results/resnet20_proxy)
# Extra --config.* overrides for every quantized run: PROXY_OVERRIDES="--config.crimp.lr=0.05".
# Another benchmark config with the same arguments: CFG=experiments/configs/resnet20_converged.py
# (the converged float model). Only some quantized rows: RUNS="q crimp"; RUNS="" trains the
# two float models only (no table).
# Rerunning resumes: finished runs are skipped, unfinished ones resume from their checkpoints.
set -eu
root=${1:-runs/resnet20_proxy}
out=${2:-results/resnet20_proxy}
py=${PYTHON:-python}
cfg=${CFG:-experiments/configs/resnet20_proxy.py}
runs=${RUNS-q qp50 qp80 qv crimp}
mkdir -p "$root"
log="$root/status.txt"
t0=$SECONDS
for ref in fp fp_long; do
  [ -f "$root/$ref/summary.json" ] && grep -q '"partial": false' "$root/$ref/summary.json" && continue
  $py -m experiments.run --config=$cfg:$ref --workdir="$root/$ref" > "$root/$ref.log" 2>&1
  echo "$ref done $(( SECONDS - t0 ))s" >> "$log"
done
for run in $runs; do
  # shellcheck disable=SC2086  # overrides are separate words
  $py -m launch.sweep --config=$cfg:$run --root="$root/$run" --reuse_fp="$root/fp" --grid="" \
    -- ${PROXY_OVERRIDES:-} >> "$root/sweep.log" 2>&1
  echo "$run done $(( SECONDS - t0 ))s" >> "$log"
done
mkdir -p "$out"
if [ -n "$runs" ]; then
  # shellcheck disable=SC2086  # one comma-separated list
  $py -m experiments.proxy_table "$root" --out "$out" --runs "$(echo $runs | tr ' ' ',')"
  echo "table written $(( SECONDS - t0 ))s" >> "$log"
fi
cp "$log" "$out/status.txt"
