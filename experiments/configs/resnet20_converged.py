"""The converged CPU accuracy benchmark (issue 22): `resnet20_proxy.py` with a float model
trained until it stops improving.

ResNet-20 on 5,000 class-balanced training images, the whole 10,000-image test set, the same
rows, second stage, Monte Carlo and seeds as `resnet20_proxy.py`; only the float schedule is
longer: `fp` trains FP_EPOCHS epochs (one cosine schedule), `fp_long` FP_EPOCHS + 10 (a fresh
cosine schedule of that length). The float model counts as converged when `fp_long` adds less
than 0.5 points over `fp`. Measured (results/resnet20_converged/README.md, the curves): 60
epochs 72.15%, 70 73.14% (+0.99), 80 73.79% (+0.65), 90 73.72% (-0.07): the 80-epoch model
has converged, so FP_EPOCHS is 80; about 22-28 s per epoch on the 2-core CPU.
Arguments:
fp, fp_long, q, qp50, qp80, qv, crimp (see resnet20_proxy.py; BatchNorm 'fold_per_step', as
there), and more `crimp` rows:
crimp_k2 (two chips per step, `crimp.variation_draws=2`), crimp_bnc (BatchNorm kept at
one convolution per layer, `crimp.batchnorm='corrected'`), crimp_bnc_k2 (crimp_bnc with two
chips per step, each reading the whole batch) and crimp_bnc_k4 (crimp_bnc with
four chips per step, each reading a quarter of the batch: `crimp.draws_split`), and the
levers of issue 22 item 3: crimp_bnc_v1 (crimp_bnc with variation-aware training from the end
of the dense epoch instead of the end of pruning, `crimp.variation_start_epochs=1`: 8 epochs
at full sigma instead of 4, at no extra step cost), qp80_r6 (qp80 with its sparsity ramp
over 6 of the 10 epochs instead of 4) and crimp_bnc_s20 (crimp_bnc with a 20-epoch second
stage, `stage_recipe(c, 20)`: 1 dense, 8 prune, 11 fine-tune epochs); with the same 20-epoch
stage and `corrected` BatchNorm: qp50_s20 and qp80_s20 (the pruned rows without variation,
the fair reference for crimp_bnc_s20), qp80_s40 (qp80 with a 40-epoch stage: 1 dense, 16
prune, 23 fine-tune epochs) and crimp_bnc_s20_t4 (crimp_bnc_s20 trained at sigma
0.4, evaluated at the same sigmas; crimp_bnc_s20_t4_seed1 the same with training seed 1:
another second stage from the same float model); crimp_bnc_s40_t4 (crimp_bnc_s20_t4 with a
40-epoch stage: 1 dense, 16 prune, 23 fine-tune epochs, as qp80_s40; crimp_bnc_s40_t4_seed1
the same with training seed 1);
crimp_bnc_s20_t5 (crimp_bnc_s20 trained at sigma 0.5; crimp_bnc_s20_t5_seed1 the same with
training seed 1);
crimp_bnc_s20_t4_adc4 (issue 23's ADC check on this benchmark): crimp_bnc_s20_t4 with its last 3
epochs trained through 4-bit ADCs (1-bit DACs, per-slice calibrated full scales), its Monte
Carlo the ADC-bit sweep (4, 5, 6 bits and ideal at sigma 0 and 0.3, 5 chips, 1,000 test
images); crimp_bnc_s20_t4_adc4_ps: the same with the ADC full scales of its ADC-aware
epochs calibrated when they begin, on the pruned and trained model
(`crimp.adc_calibrate_at='phase_start'`) instead of on the dense model at the stage's start,
and no integer-engine check (crimp_bnc_s20_t4_adc4 ran it: bit-exact);
crimp_bnc_s20_t4_adc4_ps_e8: crimp_bnc_s20_t4_adc4_ps with its last 8 epochs (of 11 fine-tune
epochs) trained through the ADCs instead of 3; crimp_bnc_s20_t4_adc4_ps_e11: the whole fine-tune
phase (11 epochs) through the ADCs; crimp_bnc_s20_t4_adc4_ps_e8_q999: the 8-epoch row with
its full scales (training and deployment) at the 0.999 quantile of the calibration reads;
crimp_bnc_s20_t4_adc4_ps_e11_q999: the same with the whole fine-tune phase through the ADCs.
Commands:
  python -m experiments.run --config=experiments/configs/resnet20_converged.py:fp \
      --workdir=runs/resnet20_converged/fp
"""

from experiments.configs import crimp_common, resnet20_proxy

FP_EPOCHS, MORE_EPOCHS = 80, 10
BNC = {"crimp.batchnorm": "corrected"}
# issue 23's ADC check: 1-bit DACs, per-slice calibrated full scales, the last 3 fine-tune epochs
# trained through 4-bit ADCs (the quickstart's setting that needed <= 5 bits at sigma 0 and 0.3);
# its Monte Carlo sweeps ADC bits on 1,000 test images (every read is 64 matmuls on a CPU)
ADC4 = {"adc.bits": 4, "dac.bits": 1, "adc.full_scale_ref": "calibrated",
        "adc.full_scale_per": "slice", "crimp.adc_aware_epochs": 3.0,
        "evaluate.chips": 5, "evaluate.test_per_class": 100, "evaluate.sigmas": (0.0,),
        "evaluate.headline_sigma": 0.0, "evaluate.compensation": ("on",),
        "evaluate.periphery_sigmas": (0.0, 0.3), "evaluate.adc_bits": (4, 5, 6)}
# name: (the resnet20_proxy row it changes, second-stage epochs (None: that row's), the
# overrides, "block.key": value)
VARIANTS = {"crimp_k2": ("crimp", None, {"crimp.variation_draws": 2}),
            "crimp_bnc": ("crimp", None, BNC),
            "crimp_bnc_k2": ("crimp", None, {**BNC, "crimp.variation_draws": 2}),
            "crimp_bnc_k4": ("crimp", None, {**BNC, "crimp.variation_draws": 4,
                                             "crimp.draws_split": True}),
            "crimp_bnc_v1": ("crimp", None, {**BNC, "crimp.variation_start_epochs": 1.0}),
            "qp80_r6": ("qp80", None, {"crimp.prune_epochs": 6, "crimp.ramp_epochs": 6,
                                       "crimp.finetune_epochs": 3, "crimp.hold_epochs": 6.0}),
            "crimp_bnc_s20": ("crimp", 20, BNC),
            "qp50_s20": ("qp50", 20, BNC),
            "qp80_s20": ("qp80", 20, BNC),
            "qp80_s40": ("qp80", 40, BNC),
            "crimp_bnc_s20_t4": ("crimp", 20, {**BNC, "variation.sigma": 0.4}),
            "crimp_bnc_s20_t4_seed1": ("crimp", 20, {**BNC, "variation.sigma": 0.4,
                                                     "train.seed": 1}),
            "crimp_bnc_s40_t4": ("crimp", 40, {**BNC, "variation.sigma": 0.4}),
            "crimp_bnc_s40_t4_seed1": ("crimp", 40, {**BNC, "variation.sigma": 0.4,
                                                     "train.seed": 1}),
            "crimp_bnc_s20_t4_adc4": ("crimp", 20, {**BNC, "variation.sigma": 0.4, **ADC4}),
            "crimp_bnc_s20_t4_adc4_ps": ("crimp", 20, {
                **BNC, "variation.sigma": 0.4, **ADC4, "crimp.adc_calibrate_at": "phase_start",
                "evaluate.engine": False}),
            "crimp_bnc_s20_t4_adc4_ps_e8": ("crimp", 20, {
                **BNC, "variation.sigma": 0.4, **ADC4, "crimp.adc_calibrate_at": "phase_start",
                "evaluate.engine": False, "crimp.adc_aware_epochs": 8.0}),
            "crimp_bnc_s20_t4_adc4_ps_e8_q999": ("crimp", 20, {
                **BNC, "variation.sigma": 0.4, **ADC4, "crimp.adc_calibrate_at": "phase_start",
                "evaluate.engine": False, "crimp.adc_aware_epochs": 8.0,
                "adc.calib_quantile": 0.999}),
            "crimp_bnc_s20_t4_adc4_ps_e11": ("crimp", 20, {
                **BNC, "variation.sigma": 0.4, **ADC4, "crimp.adc_calibrate_at": "phase_start",
                "evaluate.engine": False, "crimp.adc_aware_epochs": 11.0}),
            "crimp_bnc_s20_t4_adc4_ps_e11_q999": ("crimp", 20, {
                **BNC, "variation.sigma": 0.4, **ADC4, "crimp.adc_calibrate_at": "phase_start",
                "evaluate.engine": False, "crimp.adc_aware_epochs": 11.0,
                "adc.calib_quantile": 0.999}),
            "crimp_bnc_s20_t5": ("crimp", 20, {**BNC, "variation.sigma": 0.5}),
            "crimp_bnc_s20_t5_seed1": ("crimp", 20, {**BNC, "variation.sigma": 0.5,
                                                     "train.seed": 1})}
ARGS = resnet20_proxy.ARGS + tuple(VARIANTS)


def get_config(arg: str = "crimp"):
    if arg not in ARGS:
        raise ValueError(f"resnet20_converged config argument {arg!r}: expected one of {ARGS}")
    base, stage_epochs, overrides = VARIANTS.get(arg, (arg, None, {}))
    c = resnet20_proxy.get_config(base)
    c.unlock()
    c.train.epochs = FP_EPOCHS + (MORE_EPOCHS if arg == "fp_long" else 0)
    if stage_epochs is not None:
        crimp_common.stage_recipe(c, stage_epochs)
    for path, value in overrides.items():
        block, key = path.split(".")
        c[block][key] = value
    c.lock()
    return c
