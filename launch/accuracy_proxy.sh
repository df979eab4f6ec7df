#!/usr/bin/env bash
# The CPU accuracy benchmark (experiments/configs/resnet20_proxy.py): ResNet-20 on 5,000
# class-balanced training images, the whole 10,000-image test set. One float model shared by
# every quantized run, the float reference fp_long trained for the same total epochs, then
# q, qp50, qp80, qv, crimp (each with 20 Monte Carlo chips at sigma 0, 0.3, 0.5, compensation
# off and on), and the table. About 75 minutes on 2 CPU cores (measured 2026-12-02).
#   bash launch/accuracy_proxy.sh [RUNROOT] [OUT]   (defaults: runs/resnet20_proxy,
#                                                    results/resnet20_proxy)
# Extra --config.* overrides for every quantized run: PROXY_OVERRIDES="--config.crimp.lr=0.05".
# Rerunning resumes: finished runs are skipped, unfinished ones resume from their checkpoints.
set -eu
root=${1:-runs/resnet20_proxy}
out=${2:-results/resnet20_proxy}
py=${PYTHON:-python}
cfg=experiments/configs/resnet20_proxy.py
mkdir -p "$root"
log="$root/status.txt"
t0=$SECONDS
for ref in fp fp_long; do
  [ -f "$root/$ref/summary.json" ] && grep -q '"partial": false' "$root/$ref/summary.json" && continue
  $py -m experiments.run --config=$cfg:$ref --workdir="$root/$ref" > "$root/$ref.log" 2>&1
  echo "$ref done $(( SECONDS - t0 ))s" >> "$log"
done
for run in q qp50 qp80 qv crimp; do
  # shellcheck disable=SC2086  # overrides are separate words
  $py -m launch.sweep --config=$cfg:$run --root="$root/$run" --reuse_fp="$root/fp" --grid="" \
    -- ${PROXY_OVERRIDES:-} >> "$root/sweep.log" 2>&1
  echo "$run done $(( SECONDS - t0 ))s" >> "$log"
done
$py -m experiments.proxy_table "$root" --out "$out"
echo "table written $(( SECONDS - t0 ))s" >> "$log"
cp "$log" "$out/status.txt"
