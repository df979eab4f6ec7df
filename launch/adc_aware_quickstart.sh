#!/usr/bin/env bash
# ADC-aware training on the quickstart model (issue 23's acceptance): the fewest ADC bits within
# 0.5 points of ideal ADCs, 1-bit DACs (bit-serial, ISAAC), polarity reads, calibrated full
# scales, at sigma 0 and 0.3, after the second stage trains its last ADC_EPOCHS epochs through
# the crossbar-faithful product with TRAIN_BITS-bit ADCs. The quickstart's own float stage is
# reused (RUNS/quickstart, trained by the README's command first if missing), so the only
# difference from the reference table (results/periphery_cpu, quickstart_calibrated_dac1:
# 7 bits) is the ADC-aware epochs. Cost on 2 CPU cores (results/adc_aware_quickstart): 1-bit
# DACs make every crossbar layer 64 plain matmuls, so an ADC-aware epoch takes about 2.5
# minutes against about 30 s for a plain one, and each 10-chip sweep point at sigma 0.3 about 6.
#   bash launch/adc_aware_quickstart.sh [RUNS] [TRAIN_BITS] [ADC_EPOCHS] [CHIPS] [FULL_SCALE_PER]
#   (defaults: runs 5 2 10 layer; FULL_SCALE_PER=slice: one calibrated full scale per weight
#   slice, in training and evaluation; SWEEP_BITS="(4,5,6)" sweeps fewer ADC resolutions;
#   SIGMAS="(0.0,)" evaluates fewer sigmas, the last of them the headline;
#   CALIBRATE_AT=phase_start calibrates the training's ADC full scales when the ADC-aware
#   epochs begin instead of at the stage's start: crimp.adc_calibrate_at, workdir suffix _ps)
set -eu
root=${1:-runs}
bits=${2:-5}
epochs=${3:-2}
chips=${4:-10}
per=${5:-layer}
sweep=${SWEEP_BITS:-(4,5,6,7,8)}
sigmas=${SIGMAS:-(0.0,0.3)}
cal=${CALIBRATE_AT:-stage_start}
headline=$(echo "$sigmas" | tr -d "( )" | sed "s/,$//" | awk -F, "{print \$NF}")
py=${PYTHON:-python}
[ -f "$root/quickstart/summary.json" ] || \
  $py -m experiments.run --config=experiments/configs/quickstart.py --workdir="$root/quickstart"
work="$root/quickstart_adc${bits}_e${epochs}"
[ "$per" = layer ] || work="${work}_$per"
[ "$cal" = stage_start ] || work="${work}_ps"
mkdir -p "$work"
$py -c "from pathlib import Path; from launch.sweep import seed_float_stage; \
seed_float_stage(Path('$root/quickstart'), Path('$work'))"
$py -m experiments.run --config=experiments/configs/quickstart.py --workdir="$work" \
  --config.adc.bits="$bits" --config.dac.bits=1 --config.adc.full_scale_ref=calibrated \
  --config.adc.full_scale_per="$per" \
  --config.crimp.adc_aware_epochs="$epochs" --config.crimp.adc_calibrate_at="$cal" \
  --config.evaluate.chips="$chips" \
  "--config.evaluate.sigmas=$sigmas" --config.evaluate.headline_sigma="$headline" \
  "--config.evaluate.compensation=('on',)" \
  "--config.evaluate.periphery_sigmas=$sigmas" "--config.evaluate.adc_bits=$sweep"
echo "within 0.5 points of ideal ADCs (montecarlo.adc_sweep.within_0.5_points):"
$py -c "import json; s = json.load(open('$work/summary.json')); \
print(s['montecarlo']['adc_sweep']['within_0.5_points'])"
