#!/usr/bin/env bash
# The CPU results of results/resnet20_cpu: one float ResNet-20, then every quantized ablation
# reusing it (launch.sweep --reuse_fp). About an hour on 2 CPU cores.
#   bash launch/resnet20_cpu_results.sh [ROOT]     (default ROOT: runs/r20)
set -eu
# The second stage these results were measured with (before 2026-12-02): the BN-folded network
# trained with LARS, 1 dense + 3 zerorize-recover epochs, variation from the first step, no
# crossbar-pass cap. Drop LEGACY to run today's defaults instead.
LEGACY=${LEGACY---config.crimp.batchnorm=folded --config.crimp.optimizer=lars --config.crimp.lr=0.003 --config.crimp.warmup_epochs=0.0 --config.crimp.hold_epochs=0.0 --config.crimp.dense_epochs=1 --config.crimp.prune_epochs=3 --config.crimp.finetune_epochs=0 --config.crimp.ramp_epochs=2 --config.crimp.variation_start_epochs=0.0 --config.crimp.variation_ramp_epochs=0.0 --config.prune.crossbar_layer_cap=1.0}
root=${1:-runs/r20}
cfg=experiments/configs/resnet20_cifar10_crimp.py
python -m experiments.run --config=$cfg:fp,cpu --workdir=$root/fp
# Issue 3: float-scale vs power-of-two W8A8, and W4A4 power-of-two (no Monte Carlo).
python -m launch.sweep --config=$cfg:q,cpu --root=$root/quant --reuse_fp=$root/fp \
  --grid="quant.scale_mode=po2,float" -- $LEGACY --config.evaluate.chips=0
python -m launch.sweep --config=$cfg:q,cpu --root=$root/quant --reuse_fp=$root/fp \
  --grid="quant.weight_bits=4 quant.act_bits=4" -- $LEGACY --config.evaluate.chips=0
# Issue 4: crossbar-aligned pruning at 50% and 80%.
python -m launch.sweep --config=$cfg:qp,cpu --root=$root/prune --reuse_fp=$root/fp \
  --grid="prune.target_sparsity=0.5,0.8" -- $LEGACY --config.evaluate.chips=0
# The same pruning points with a 7-epoch CRIMP stage.
python -m launch.sweep --config=$cfg:qp,cpu --root=$root/prune_long --reuse_fp=$root/fp \
  --grid="prune.target_sparsity=0.5,0.8" -- $LEGACY --config.evaluate.chips=0 \
  --config.crimp.prune_epochs=5 --config.crimp.ramp_epochs=3 \
  --config.crimp.finetune_epochs=1 --config.crimp.lr=0.005
# Issue 5: the four robustness ablations (q: neither/compensation; qv: adaptation/both).
python -m launch.sweep --config=$cfg:q,cpu --root=$root/robust --reuse_fp=$root/fp --grid="" -- $LEGACY
python -m launch.sweep --config=$cfg:qv,cpu --root=$root/robust_qv --reuse_fp=$root/fp --grid="" -- $LEGACY
dirs=$(find "$root" -name summary.json -not -path "*/report/*" -printf '%h\n' | sort)
python -m experiments.results_table $dirs --out "$root/table.md"
python -m experiments.report $dirs --out "$root/report"
