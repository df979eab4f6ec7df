#!/usr/bin/env bash
# The CPU results of results/resnet20_cpu: one float ResNet-20, then every quantized ablation
# reusing it (launch.sweep --reuse_fp). About an hour on 2 CPU cores.
#   bash launch/resnet20_cpu_results.sh [ROOT]     (default ROOT: runs/r20)
set -eu
root=${1:-runs/r20}
cfg=experiments/configs/resnet20_cifar10_crimp.py
python -m experiments.run --config=$cfg:fp,cpu --workdir=$root/fp
# Issue 3: float-scale vs power-of-two W8A8, and W4A4 power-of-two (no Monte Carlo).
python -m launch.sweep --config=$cfg:q,cpu --root=$root/quant --reuse_fp=$root/fp \
  --grid="quant.scale_mode=po2,float" -- --config.evaluate.chips=0
python -m launch.sweep --config=$cfg:q,cpu --root=$root/quant --reuse_fp=$root/fp \
  --grid="quant.weight_bits=4 quant.act_bits=4" -- --config.evaluate.chips=0
# Issue 4: crossbar-aligned pruning at 50% and 80%.
python -m launch.sweep --config=$cfg:qp,cpu --root=$root/prune --reuse_fp=$root/fp \
  --grid="prune.target_sparsity=0.5,0.8" -- --config.evaluate.chips=0
# The same pruning points with a 7-epoch CRIMP stage.
python -m launch.sweep --config=$cfg:qp,cpu --root=$root/prune_long --reuse_fp=$root/fp \
  --grid="prune.target_sparsity=0.5,0.8" -- --config.evaluate.chips=0 \
  --config.crimp.prune_epochs=5 --config.crimp.ramp_epochs=3 \
  --config.crimp.finetune_epochs=1 --config.crimp.lr=0.005
# Issue 5: the four robustness ablations (q: neither/compensation; qv: adaptation/both).
python -m launch.sweep --config=$cfg:q,cpu --root=$root/robust --reuse_fp=$root/fp --grid=""
python -m launch.sweep --config=$cfg:qv,cpu --root=$root/robust_qv --reuse_fp=$root/fp --grid=""
dirs=$(find "$root" -name summary.json -not -path "*/report/*" -printf '%h\n' | sort)
python -m experiments.results_table $dirs --out "$root/table.md"
python -m experiments.report $dirs --out "$root/report"
