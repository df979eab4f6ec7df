#!/usr/bin/env bash
# results/resnet56_cpu: ResNet-56 with 100 Monte Carlo chips on a 2-core CPU (no GPU needed).
# One float ResNet-56 (5,000 training images, 10 epochs), then the CRIMP model ('crimp':
# adaptation / both curves) and the model trained without variation ('qp': neither /
# compensation curves) reusing it; each sweeps sigma 0, 0.1, 0.3, 0.5 over 100 chips on a
# 500-image test subset. About 1.5 hours on 2 CPU cores.
#   bash launch/resnet56_cpu_results.sh [ROOT]     (default ROOT: runs/r56)
set -eu
root=${1:-runs/r56}
cfg=experiments/configs/resnet56_cifar10_crimp.py
python -m experiments.run --config=$cfg:fp,cpu --workdir=$root/fp
python -m launch.sweep --config=$cfg:crimp,cpu --root=$root/crimp --reuse_fp=$root/fp --grid=""
python -m launch.sweep --config=$cfg:qp,cpu --root=$root/qp --reuse_fp=$root/fp --grid=""
dirs=$(find "$root" -name summary.json -not -path "*/report/*" -printf '%h\n' | sort)
python -m experiments.results_table $dirs --out "$root/table.md"
python -m experiments.report $dirs --out "$root/report"
