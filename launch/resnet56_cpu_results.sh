#!/usr/bin/env bash
# results/resnet56_cpu: ResNet-56 with 100 Monte Carlo chips on a 2-core CPU (no GPU needed).
# One float ResNet-56 (5,000 training images, 10 epochs), then the CRIMP model ('crimp':
# adaptation / both curves) and the model trained without variation ('qp': neither /
# compensation curves) reusing it; each sweeps sigma 0, 0.1, 0.3, 0.5 over 100 chips on a
# 500-image test subset. About 1.5 hours on 2 CPU cores.
#   bash launch/resnet56_cpu_results.sh [ROOT]     (default ROOT: runs/r56)
set -eu
# The second stage these results were measured with (before 2026-12-02): the BN-folded network
# trained with LARS, 1 dense + 3 zerorize-recover epochs, variation from the first step, no
# crossbar-pass cap. Drop LEGACY to run today's defaults instead.
LEGACY=${LEGACY---config.crimp.batchnorm=folded --config.crimp.optimizer=lars --config.crimp.lr=0.003 --config.crimp.warmup_epochs=0.0 --config.crimp.hold_epochs=0.0 --config.crimp.dense_epochs=1 --config.crimp.prune_epochs=3 --config.crimp.finetune_epochs=0 --config.crimp.ramp_epochs=2 --config.crimp.variation_start_epochs=0.0 --config.crimp.variation_ramp_epochs=0.0 --config.prune.crossbar_layer_cap=1.0}
root=${1:-runs/r56}
cfg=experiments/configs/resnet56_cifar10_crimp.py
python -m experiments.run --config=$cfg:fp,cpu --workdir=$root/fp
python -m launch.sweep --config=$cfg:crimp,cpu --root=$root/crimp --reuse_fp=$root/fp --grid="" -- $LEGACY
python -m launch.sweep --config=$cfg:qp,cpu --root=$root/qp --reuse_fp=$root/fp --grid="" -- $LEGACY
dirs=$(find "$root" -name summary.json -not -path "*/report/*" -printf '%h\n' | sort)
python -m experiments.results_table $dirs --out "$root/table.md"
python -m experiments.report $dirs --out "$root/report"
