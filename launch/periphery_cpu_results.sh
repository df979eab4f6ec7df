#!/usr/bin/env bash
# The periphery results of results/periphery_cpu: ADC-bit and read-time (drift) sweeps of a
# trained quickstart model and of the ResNet-20 CRIMP CPU run, with 4-bit DACs and differential
# (signed) ADC reads at full scale 'max', then the quickstart model with calibrated ADC full
# scales (4-bit and 1-bit DACs) and with drift alone (sigma 0). Each command resumes a
# finished workdir (training is skipped) or trains it first (quickstart: ~7 min; ResNet-20:
# ~15 min on 2 CPU cores), then runs the sweeps (quickstart ~20 min, ResNet-20 ~20 min on 2
# CPU cores).
#   bash launch/periphery_cpu_results.sh [ROOT]     (default ROOT: runs)
set -eu
root=${1:-runs}
COMMON="--config.evaluate.chips=20 --config.evaluate.periphery_sigmas=(0.0,0.3)
  --config.evaluate.sigmas=(0.0,0.3)
  --config.dac.bits=4 --config.adc.read=differential
  --config.variation.drift_nu_mean=0.05 --config.variation.drift_nu_std=0.02"
TIMES="--config.evaluate.read_times=(20.0,60.0,3600.0,86400.0,2.6e6,3.15e7)"
python -m experiments.run --config=experiments/configs/quickstart.py \
  --workdir=$root/quickstart $COMMON $TIMES "--config.evaluate.adc_bits=(8,10,12,14)"
python -m experiments.run --config=experiments/configs/resnet20_cifar10_crimp.py:crimp,cpu \
  --workdir=$root/r20_crimp $COMMON $TIMES "--config.evaluate.adc_bits=(12,14)"
# Calibrated ADC full scales (per layer, the largest |partial sum| on 128 training images) on a
# copy of the trained quickstart workdir (~10 min of sweeps on 2 CPU cores).
rm -rf $root/quickstart_cal && cp -r $root/quickstart $root/quickstart_cal
rm -f $root/quickstart_cal/summary.json
python -m experiments.run --config=experiments/configs/quickstart.py \
  --workdir=$root/quickstart_cal --config.evaluate.chips=20 \
  "--config.evaluate.periphery_sigmas=(0.0,0.3)" "--config.evaluate.sigmas=(0.0,0.3)" \
  --config.dac.bits=4 --config.adc.read=differential --config.adc.full_scale_ref=calibrated \
  "--config.evaluate.adc_bits=(6,8,9,10,11,12)"
# Drift alone (sigma 0: no write variation), ideal ADCs, on another copy of the trained
# quickstart workdir (~5 min on 2 CPU cores).
rm -rf $root/quickstart_drift0 && cp -r $root/quickstart $root/quickstart_drift0
rm -f $root/quickstart_drift0/summary.json
python -m experiments.run --config=experiments/configs/quickstart.py \
  --workdir=$root/quickstart_drift0 --config.evaluate.chips=20 \
  "--config.evaluate.sigmas=(0.0,)" --config.evaluate.headline_sigma=0.0 \
  --config.variation.drift_nu_mean=0.05 --config.variation.drift_nu_std=0.02 $TIMES
# ISAAC-style 1-bit DACs (polarity reads) with calibrated ADC full scales, on a copy of the
# trained quickstart workdir (~25 min of sweeps on 2 CPU cores: 64 plain MACs per MAC).
rm -rf $root/quickstart_cal1 && cp -r $root/quickstart $root/quickstart_cal1
rm -f $root/quickstart_cal1/summary.json
python -m experiments.run --config=experiments/configs/quickstart.py \
  --workdir=$root/quickstart_cal1 --config.evaluate.chips=20 \
  "--config.evaluate.periphery_sigmas=(0.0,0.3)" "--config.evaluate.sigmas=(0.0,0.3)" \
  --config.dac.bits=1 --config.adc.full_scale_ref=calibrated "--config.evaluate.adc_bits=(6,7,8)"
