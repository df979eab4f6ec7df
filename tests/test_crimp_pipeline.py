"""The integrated CRIMP process end to end on synthetic data: every stage, one trace, exact
resume (folded and BatchNorm-kept stages), the training chip equal to the Monte Carlo chip,
and the second stage's learning-rate schedule."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from crimp_jax.config import parse_config
from crimp_jax.evaluate import chips
from crimp_jax.train import analysis, pipeline
from crimp_jax.train import crimp as crimp_mod
from crimp_jax.train.checkpoint import StageCheckpointer
from crimp_jax.train.crimp import StageModels, crimp_task, init_crimp_state
from crimp_jax.train.loop import DeviceData, cross_entropy, make_train_step
from crimp_jax.utils.blocks import ConfigError
from tests.conftest import tiny_config


@pytest.mark.slow
def test_whole_chain_writes_every_section(tmp_path):
    """The tiny chain end to end, deployed crossbar-faithfully (6-bit ADCs with calibrated
    full scales reading the two arrays' difference, 4-bit DACs): its integer engine equals the
    fake-quantized ADC path; every section of summary.json: pruning, cost, the Monte Carlo
    curves (compensation off and on), ADC and DAC sweeps with their costs, a drift sweep with
    its figure; then re-evaluated under a 5-bit ADC without training (its integer artifact
    bit-exact with the 5-bit ADC path), with its full scales calibrated again at two
    quantiles. (The ideal-ADC engine's
    exact logits: the own-model whole chains, tests/test_graph.py and tests/test_examples.py.)"""
    from crimp_jax.summary import read_summary

    c = tiny_config(**{"adc.bits": 6, "dac.bits": 4, "adc.read": "differential",
                       "adc.full_scale_ref": "calibrated", "adc.calib_images": 16,
                       "evaluate.adc_bits": (4, 8), "evaluate.dac_bits": (2,),
                       "evaluate.periphery_sigmas": (0.0, 0.3),
                       "evaluate.read_times": (20.0, 2e5),
                       "variation.drift_nu_mean": 0.05, "variation.drift_nu_std": 0.02})
    s = pipeline.train_and_evaluate(c, tmp_path)
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk["partial"] is False and on_disk["method"] == "crimp"
    assert on_disk["schema"] == 2 and on_disk["config"]["data"]["source"] == "synthetic"
    acc = on_disk["accuracy"]
    assert acc["fake_quant"] == s["test_accuracy"]
    assert acc["integer_engine"] == acc["fake_quant_adc"]
    assert acc["engine_exact_logits"] == 1.0 and acc["engine_agreement"] == 1.0
    assert acc["max_logit_diff"] == 0.0
    assert abs(on_disk["prune"]["sparsity"] - 0.5) < 0.05
    t = on_disk["prune"]["totals"]
    assert t["tiles_after"] < t["tiles_dense"]
    curves = on_disk["montecarlo"]["curves"]
    assert set(curves) == {"adaptation", "both"}  # variation-trained: compensation off / on
    assert set(curves["both"]) == {"0", "0.3"} and curves["both"]["0.3"]["n_chips"] == 2
    assert on_disk["cost"]["power_reduction"]["original"] > 1
    assert on_disk["cost"]["area_reduction"]["original"] > 1
    for f in ("model_int.npz", "accuracy_vs_sigma.png", "crossbar_occupancy.png"):
        assert (tmp_path / f).stat().st_size > 0
    mc = read_summary(tmp_path / "summary.json").get("montecarlo")
    assert mc["adc"]["bits"] == 6 and mc["dac"]["bits"] == 4
    adc = mc["adc_sweep"]
    assert adc["full_scale_ref"] == "calibrated" and adc["references"] == mc["adc_references"]
    assert all(v >= 1.0 for v in adc["references"].values())
    assert adc["bits"] == [4, 8] and set(adc["accuracy"]) == {"0", "0.3"}
    assert adc["accuracy"]["0.3"]["8"]["n_chips"] == c.evaluate.chips
    assert set(adc["ideal"]) == {"0", "0.3"} and set(adc["within_0.5_points"]) == {"0", "0.3"}
    assert adc["cost"]["4"]["periphery_saving"]["power_x"] > adc["cost"]["8"][
        "periphery_saving"]["power_x"]
    assert mc["dac_sweep"]["bits"] == [2] and mc["dac_sweep"]["adc_bits"] == 6
    drift = mc["drift_sweep"]
    assert set(drift["curves"]) == {"adaptation", "both"}
    assert set(drift["curves"]["both"]) == {"20", "200000"}
    for png in ("accuracy_vs_adc_bits.png", "accuracy_vs_dac_bits.png", "accuracy_vs_time.png"):
        assert (tmp_path / png).stat().st_size > 1000

    # re-evaluated under a 5-bit ADC, without training: a new table, the run's files unchanged
    from crimp_jax.config import config_from_dict
    from crimp_jax.train.finished import reevaluate
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    c = config_from_dict(on_disk["config"])
    c.adc.bits, c.evaluate.sigmas, c.evaluate.chips = 5, (0.3,), 2
    c.evaluate.compensation = ("on",)  # one compiled sweep
    # and along the ADC-bits knob (a traced value) at the same sigma: the same chips
    c.evaluate.knob, c.evaluate.knob_values, c.evaluate.periphery_sigmas = "adc_bits", (5,), (0.3,)
    # and the full scales calibrated again at quantiles 1 (the run's) and 0.9; the run's own
    # sweeps are not asked for again
    c.evaluate.calib_quantiles = (1.0, 0.9)
    c.evaluate.adc_bits, c.evaluate.dac_bits, c.evaluate.read_times = (), (), ()
    out = tmp_path / "evaluate" / "adc5"
    got = reevaluate(c, tmp_path, out, {"command": "test"})
    assert json.loads((out / "evaluation.json").read_text()) == got
    # the integer artifact of the 5-bit deployment, its engine equal to the 5-bit ADC path
    from crimp_jax.integer import load_artifact
    eng = got["engine"]
    assert eng["artifact"] == "model_int.npz" and eng["test_images"] == s["test_images"]
    assert eng["integer_engine"] == eng["fake_quant_adc"] and eng["max_logit_diff"] == 0.0
    assert eng["engine_exact_logits"] == 1.0 and eng["engine_agreement"] == 1.0
    assert load_artifact(str(out / "model_int.npz")).header["periphery"]["adc"]["bits"] == 5
    mc = got["montecarlo"]
    assert mc["adc"]["bits"] == 5 and set(mc["curves"]) == {"both"}
    assert set(mc["curves"]["both"]) == {"0.3"}
    assert mc["curves"]["both"]["0.3"]["n_chips"] == 2
    knob = mc["knob_sweep"]
    assert knob["knob"] == "adc_bits" and knob["values"] == [5.0]
    assert knob["curves"]["both"]["0.3"]["5"] == mc["curves"]["both"]["0.3"]
    assert (out / "accuracy_vs_adc_bits.png").stat().st_size > 0
    assert not {"adc_sweep", "dac_sweep", "drift_sweep"} & set(mc)
    qs = mc["quantile_sweep"]
    assert qs["quantiles"] == [1.0, 0.9] and qs["bits"] == [5] and qs["sigmas"] == [0.3]
    # quantile 1 is the deployment's own calibration: its references and its chips' reads
    assert qs["references"]["1"] == mc["adc_references"]
    assert qs["accuracy"]["1"]["0.3"]["5"] == mc["curves"]["both"]["0.3"]
    assert qs["ideal"]["0.3"]["n_chips"] == 2 and set(qs["within_0.5_points"]) == {"1", "0.9"}
    low, top = qs["references"]["0.9"], qs["references"]["1"]
    assert all(low[k] <= top[k] for k in top) and any(low[k] < top[k] for k in top)
    after = {p: p.read_bytes() for p in tmp_path.rglob("*")
             if p.is_file() and out not in p.parents}
    assert after == before


def counting_traces(task):
    """(`task` whose forward appends to the returned list each time it is traced, the list)."""
    traces, forward = [], task.forward

    def counting_forward(*args):
        traces.append(1)
        return forward(*args)

    return dataclasses.replace(task, forward=counting_forward), traces


def _stage(c, n=100):
    """(run, StageModels, float-stage state, device data) of tiny_cnn at init on synthetic data."""
    from crimp_jax.data import load_splits
    run = parse_config(c)
    splits = load_splits(run.data)
    data = DeviceData.put(splits.train)
    net = pipeline.make_network(run, splits.info)
    models = StageModels("tiny_cnn", net, net.graph)
    fp = pipeline.init_fp_state(run, models.bn, pipeline.fp_task(run, models.bn, 1).tx)
    return run, models, fp, DeviceData(data.images[:n], data.labels[:n])


@pytest.mark.slow
@pytest.mark.parametrize("batchnorm", ["fold_per_step"])
def test_crimp_train_step_traces_once_across_phases(batchnorm):
    """4 steps per epoch: dense, zerorize, recover, zerorize epochs and the switch to frozen
    BatchNorm statistics: one trace. (The same switches in BatchNorm 'folded' and 'corrected'
    are not run here, to keep the suite short; 'corrected' trains, freezes nothing and resumes
    exactly in the model-selection test below.)"""
    c = tiny_config(**{"crimp.dense_epochs": 1, "crimp.prune_epochs": 3,
                       "crimp.batchnorm": batchnorm, "crimp.bn_freeze_epochs": 1.0,
                       "crimp.variation_start_epochs": 1.0, "crimp.variation_ramp_epochs": 1.0})
    run, models, fp, data = _stage(c, 100)
    task, traces = counting_traces(crimp_task(run, models, 4))
    before = np.asarray(jax.tree.leaves(fp.model_state["batch_stats"])[0])  # (donated below)
    state = init_crimp_state(run, models, fp, data.images[:50], task.tx)
    step = make_train_step(task, 25, 0.0, True, 1)
    perm = jnp.arange(len(data))
    for i in range(16):
        state, m = step(state, data.images, data.labels, perm, jnp.int32(i % 4),
                        jax.random.key(i))
    assert np.isfinite(float(m[0]))
    assert len(traces) == 1
    # the running statistics moved in the first three epochs and froze in the last
    assert not np.allclose(jax.tree.leaves(state.model_state["batch_stats"])[0], before)


def _last_checkpoint(workdir):
    ck = StageCheckpointer(workdir, "crimp")
    step = ck.latest_step()
    restored = ck.manager.restore(step)
    ck.close()
    return step, restored


@pytest.mark.slow
def test_model_selection_deploys_the_best_validation_epoch_and_resumes(tmp_path):
    """crimp.select_chips: every epoch with the final masks is scored on 2 chips over 50
    held-out training images; the deployed model is the best epoch's (its test accuracy is the
    one that epoch logged). Preempted after the prune phase's last epoch (the alternation's
    final zerorize, the first scored epoch), the resumed stage keeps that score, makes the same
    selection, and its last checkpoint equals the uninterrupted one's: params, thresholds,
    masks, momentum and BatchNorm's running statistics ('corrected', one convolution per
    layer). (Scores kept and dropped across resumes: the `_SelectionLog` test below.)"""
    over = {"crimp.batchnorm": "corrected", "crimp.prune_epochs": 2, "crimp.finetune_epochs": 2,
            "crimp.select_chips": 2, "data.val_per_class": 5, "train.eval_every": 1,
            "evaluate.chips": 0, "evaluate.engine": False, "crimp.lr": 0.05}
    full = pipeline.train_and_evaluate(tiny_config(**over), tmp_path / "full")
    sel = full["selection"]
    assert [s["epoch"] for s in sel["scores"]] == [2, 3, 4]  # the masks are final after 2
    assert sel["val_images"] == 50 and sel["chips"] == 2 and sel["sigma"] == 0.3
    means = [s["mean"] for s in sel["scores"]]
    assert sel["chosen_epoch"] == 2 + means.index(max(means))  # the first of equal scores
    logged = [json.loads(ln) for ln in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    crimp_epochs = {r["epoch"]: r for r in logged if r["stage"] == "crimp"}
    assert [crimp_epochs[e]["select_accuracy"] for e in (2, 3, 4)] == means
    assert full["test_accuracy"] == crimp_epochs[sel["chosen_epoch"]]["test_accuracy"]
    # Cut after the float epoch and CRIMP epochs 1 and 2 (the prune phase; epoch 2 scored),
    # resumed to the end.
    cut = tmp_path / "cut"
    assert pipeline.train_and_evaluate(tiny_config(**over), cut, stop_after_epoch=3) == {
        "interrupted": True, "stage": "crimp"}
    kept = json.loads((cut / "checkpoints" / "crimp_selection.json").read_text())["scores"]
    assert [k["epoch"] for k in kept] == [2]
    resumed = pipeline.train_and_evaluate(tiny_config(**over), cut)
    assert resumed["selection"] == sel and resumed["test_accuracy"] == full["test_accuracy"]
    assert resumed["prune"]["sparsity"] == full["prune"]["sparsity"]
    (sa, a), (sb, b) = _last_checkpoint(tmp_path / "full"), _last_checkpoint(cut)
    assert sa == sb == 4 * 4
    assert jax.tree.leaves(a["model_state"])
    jax.tree.map(np.testing.assert_array_equal, a, b)


def test_selection_log_keeps_the_best_and_drops_scores_after_a_resume(tmp_path):
    from crimp_jax.train.loop import _SelectionLog
    from crimp_jax.train.state import TrainState

    def state(step):
        return TrainState(jnp.int32(step), {"w": jnp.full((2,), float(step))}, {}, {})

    log = _SelectionLog(tmp_path, "crimp", resumed_epoch=0)
    for epoch, mean in ((1, 0.5), (2, 0.7), (3, 0.7), (4, 0.6)):
        log.offer(epoch, state(10 * epoch), mean, 0.0)
    assert log.best["epoch"] == 2  # 3 ties with 2: the first stays
    np.testing.assert_array_equal(log.best_state(state(0)).params["w"], [20.0, 20.0])
    log.ckpt.close()
    again = _SelectionLog(tmp_path, "crimp", resumed_epoch=1)  # resumed after epoch 1
    assert [s["epoch"] for s in again.scores] == [1] and again.best["mean"] == 0.5
    again.offer(2, state(20), 0.7, 0.0)  # epoch 2 trained again: the same state, saved again
    np.testing.assert_array_equal(again.best_state(state(0)).params["w"], [20.0, 20.0])
    again.ckpt.close()


def test_bad_values_rejected_before_compile():
    cases = [({"method": "qpv"}, "method='qpv'"),
             ({"variation.sigma": 0.0}, "variation.sigma"),
             ({"variation.sigma": -0.1}, "sigma=-0.1"),
             ({"quant.weight_rules": (("conv99", 4),)}, "'conv99'"),
             ({"prune.exclude": ("stem/",)}, "'stem/'"),  # tiny_cnn has no stem
             ({"crimp.ramp_epochs": 3}, "crimp.ramp_epochs=3: expected <= crimp.prune_epochs"),
             ({"evaluate.compensation": ("maybe",)}, "evaluate.compensation"),
             ({"crimp.variation_draws": 0}, r"crimp.variation_draws=0: expected an int >= 1"),
             ({"crimp.draws_impl": "scan"}, "crimp.draws_impl='scan': expected one of"),
             ({"method": "qp", "crimp.variation_draws": 2, "variation.sigma": 0.0},
              "variation_draws=2: only methods that train"),
             ({"crimp.bn_freeze_epochs": 5.0}, "crimp.bn_freeze_epochs=5.0: expected <="),
             ({"train.batch_size": 500}, "train.batch_size=500: expected <= the 200"),
             ({"crimp.select_chips": 2}, ("crimp.select_chips=2: model selection scores a "
                                          "validation split: set data.val_per_class")),
             ({"crimp.select_chips": 2, "data.val_per_class": 5,
               "crimp.variation_start_epochs": 2.0}, "no stage epoch has the final masks"),
             ({"data.val_per_class": 4990}, r"data.train_per_class=20: expected <= 10 "),
             ({"crimp.select_sigma": -0.1}, r"crimp.select_sigma=-0.1: expected"),
             ({"evaluate.calib_quantiles": (1.5,)}, r"evaluate.calib_quantiles entry=1.5"),
             ({"evaluate.calib_quantiles": (0.99,), "adc.bits": 5},
              r"calib_quantiles=\(0.99,\): a quantile sweep .*adc.full_scale_ref='calibrated'")]
    for over, msg in cases:
        with pytest.raises(ConfigError, match=msg):
            pipeline.validate_config(tiny_config(**over))


@pytest.mark.slow
def test_training_chip_equals_the_monte_carlo_chip():
    """For the same key, the chip a training step draws (inside the task's forward) and the chip
    Monte Carlo programs give identical effective kernels: the same masks (pruned rows absent,
    stuck-at faults and a finite on/off ratio on) and the same per-layer weight bits (a W4 and
    a W8 layer). BatchNorm kept, its statistics frozen: the step folds with the running
    statistics, as deployment does (with batch statistics the kernels differ by design)."""
    c = tiny_config(**{"quant.weight_rules": (("conv1", 4),), "variation.sa0_rate": 0.02,
                       "variation.sa1_rate": 0.05, "variation.on_off_ratio": 20.0,
                       "crimp.dense_epochs": 0, "crimp.prune_epochs": 1,
                       "crimp.batchnorm": "fold_per_step", "crimp.bn_freeze_epochs": 1.0})
    run, models, fp, data = _stage(c, 50)
    task = crimp_task(run, models, 2)
    state = init_crimp_state(run, models, fp, data.images, task.tx)
    step = make_train_step(task, 25, 0.0, False, 1)
    for i in range(2):  # zerorize steps: masks set, latent weights pruned
        state, _ = step(state, data.images, data.labels, jnp.arange(50), jnp.int32(i),
                        jax.random.key(i))
    key = jax.random.key(7)
    seen = {}
    real = crimp_mod.fake_quant_apply

    def spy(model, params, qstate, images, qcfg, weight_transform=None, **kw):
        from crimp_jax.quant import quantize_weights_int
        seen["train"] = weight_transform(quantize_weights_int(model, params, qstate, qcfg))
        return real(model, params, qstate, images, qcfg, weight_transform=weight_transform,
                    **kw)

    def training_kernels(s):  # the kernels the spy saw inside one training forward
        task.forward(s.params, s.model_state, s.opt_state, data.images[:4], True, key, s.step)
        return seen["train"]

    crimp_mod.fake_quant_apply = spy
    try:  # one compiled forward (op by op, each primitive would compile on its own)
        seen["train"] = jax.jit(training_kernels)(state)
    finally:
        crimp_mod.fake_quant_apply = real
    p, qs = crimp_mod.deployed_folded(run, models, state), state.params["quant"]
    masks = analysis.flat_masks(crimp_mod.masks_of(state.opt_state))
    from crimp_jax.quant import quantize_weights_int
    qe = quantize_weights_int(models.folded, p, qs, run.quant)
    chip, _ = chips.chip_and_apply(models.folded, run.quant, run.variation, run.xbar)
    mc = jax.jit(chip)(key, p, qs, qe, masks, jnp.float32(run.variation.sigma))["k"]
    bits = analysis.kernel_bits(models.folded, run.quant)
    assert bits["conv1/conv/kernel"] == 4 and bits["conv2/conv/kernel"] == 8
    assert set(seen["train"]) == set(mc)
    for path in mc:
        np.testing.assert_array_equal(np.asarray(seen["train"][path]), np.asarray(mc[path]))
    m = masks["conv1/conv/kernel"]
    assert 0 < float(m.mean()) < 1  # the W4 layer is pruned: masks matter in this comparison
    assert np.all(np.asarray(mc["conv1/conv/kernel"])[np.asarray(m) == 0] == 0)


def test_step_schedule_decays_at_the_crimp_stage_milestones():
    """crimp.schedule='step' with fractional milestones: the rate drops at half and three
    quarters of the *crimp* stage (8 epochs: after epochs 4 and 6), not of the float stage."""
    c = tiny_config(**{"crimp.schedule": "step", "crimp.optimizer": "sgd", "crimp.lr": 0.1,
                       "crimp.dense_epochs": 2, "crimp.prune_epochs": 3,
                       "crimp.finetune_epochs": 3, "crimp.step_milestones": (0.5, 0.75)})
    run = parse_config(c)
    _, schedule = crimp_mod.make_crimp_optimizer(run.crimp, steps_per_epoch=10)
    lrs = [float(schedule(s)) for s in (0, 39, 40, 59, 60, 79)]
    np.testing.assert_allclose(lrs, [0.1, 0.1, 0.01, 0.01, 0.001, 0.001], rtol=1e-6)
    # the float stage resolves its own milestones against its own epochs
    from crimp_jax.train.optim import make_schedule
    t = dataclasses.replace(run.train, schedule="step", step_milestones=(0.5,), epochs=4)
    fp = make_schedule(t, 10, t.epochs)
    assert float(fp(19)) == pytest.approx(0.05) and float(fp(20)) == pytest.approx(0.005)


def test_cosine_holds_the_peak_until_the_ramp_ends_after_warmup():
    from crimp_jax.train.optim import OptimSpec, make_schedule
    s = make_schedule(OptimSpec(lr=0.2, warmup_epochs=1.0, hold_epochs=2.0), 10, 6)
    assert float(s(0)) == 0.0 and float(s(5)) == pytest.approx(0.1)
    assert float(s(10)) == pytest.approx(0.2) and float(s(29)) == pytest.approx(0.2)
    assert 0.0 < float(s(45)) < 0.2 and float(s(60)) == pytest.approx(0.0, abs=1e-7)


def test_variation_sigma_starts_after_the_ramp_and_rises_linearly():
    run = parse_config(tiny_config(**{"crimp.variation_start_epochs": 2.0,
                                      "crimp.variation_ramp_epochs": 1.0}))
    got = [float(crimp_mod.training_sigma(run, s, 10)) for s in (0, 19, 20, 25, 30, 50)]
    np.testing.assert_allclose(got, [0, 0, 0, 0.15, 0.3, 0.3], atol=1e-7)


def test_distillation_loss_golden_values():
    s = jnp.asarray([[2.0, 0.0]])
    t = jnp.asarray([[0.0, 2.0]])
    y = jnp.asarray([0])
    ce = float(cross_entropy(s, y))
    assert float(crimp_mod.distillation_loss(s, t, y, 0.0, 4.0)) == pytest.approx(ce)
    # T = 1: KL(softmax(t) || softmax(s)) by hand
    pt, ps = np.exp([0, 2]) / np.exp([0, 2]).sum(), np.exp([2, 0]) / np.exp([2, 0]).sum()
    kl = float(np.sum(pt * np.log(pt / ps)))
    got = float(crimp_mod.distillation_loss(s, t, y, 0.5, 1.0))
    assert got == pytest.approx(0.5 * ce + 0.5 * kl, rel=1e-5)


def _tiny_state(c):
    run, models, fp, data = _stage(c, 16)
    return run, models, fp, data.images, data.labels


@pytest.mark.slow
def test_variation_draws_average_loss_and_gradient_over_k_chips():
    """K = 2 draws: logits are the two single-draw forwards (keys fold_in(key, d)) stacked, the
    loss is their mean loss and the gradient their mean gradient; 'vmap' == 'unroll'. With
    crimp.draws_split chip d reads only images [8d, 8d + 8). (BatchNorm 'corrected': each chip
    corrects with its own images' statistics; 'fold_per_step' would fold the halves with the
    whole batch's.)"""
    bnc = {"crimp.batchnorm": "corrected"}
    run1, models, fp, images, labels = _tiny_state(tiny_config(**bnc))
    run2 = parse_config(tiny_config(**bnc, **{"crimp.variation_draws": 2}))
    t1, t2 = crimp_task(run1, models, 4), crimp_task(run2, models, 4)
    state = init_crimp_state(run1, models, fp, images, t1.tx)
    key = jax.random.key(7)
    run = jax.jit(lambda task, p, x, train, k, n: task.forward(
        p, state.model_state, state.opt_state, x, train, k, n)[0], static_argnums=(0, 3, 5))
    fwd = lambda task, p, k: run(task, p, images, True, k, 8)  # noqa: E731

    def loss(task, params, k):
        return cross_entropy(task.forward(params, state.model_state, state.opt_state, images, True, k, 8)[0],
                             labels)

    logits2 = fwd(t2, state.params, key)
    singles = [fwd(t1, state.params, jax.random.fold_in(key, d)) for d in (0, 1)]
    assert logits2.shape == (2, 16, 10)
    np.testing.assert_allclose(logits2, jnp.stack(singles), rtol=1e-5, atol=1e-5)
    assert not np.allclose(singles[0], singles[1])  # two different chips
    t3 = crimp_task(parse_config(tiny_config(**bnc, **{"crimp.variation_draws": 2,
                                                       "crimp.draws_impl": "vmap"})), models, 4)
    np.testing.assert_allclose(fwd(t3, state.params, key), logits2, rtol=1e-5, atol=1e-5)
    l2, g2 = jax.jit(jax.value_and_grad(lambda p: loss(t2, p, key)))(state.params)
    g1 = jax.jit(jax.value_and_grad(lambda p, k: loss(t1, p, k)))
    parts = [g1(state.params, jax.random.fold_in(key, d)) for d in (0, 1)]
    np.testing.assert_allclose(l2, (parts[0][0] + parts[1][0]) / 2, rtol=1e-5)
    jax.tree.map(lambda a, b, c: np.testing.assert_allclose(a, (b + c) / 2, rtol=1e-3,
                                                            atol=1e-5),
                 g2, parts[0][1], parts[1][1])
    # K = 1 keeps the single-draw path: the key itself, not fold_in(key, 0).
    assert fwd(t1, state.params, key).shape == (16, 10)
    # Evaluation ignores K: the deployed model on ideal devices.
    ev = [run(t, state.params, images, False, key, 0) for t in (t1, t2)]
    np.testing.assert_array_equal(ev[0], ev[1])
    # crimp.draws_split: the logits (16, classes) are the single-chip forwards of the two
    # halves, in batch order, 'unroll' and 'vmap' alike
    halves = [run(t1, state.params, images[8 * d:8 * d + 8], True, jax.random.fold_in(key, d), 8)
              for d in (0, 1)]
    for impl in ("unroll", "vmap"):
        ts = crimp_task(parse_config(tiny_config(**bnc, **{
            "crimp.variation_draws": 2, "crimp.draws_split": True, "crimp.draws_impl": impl})),
            models, 4)
        split = fwd(ts, state.params, key)
        assert split.shape == (16, 10)
        np.testing.assert_allclose(split, jnp.concatenate(halves), rtol=1e-5, atol=1e-5)
    with pytest.raises(ConfigError, match=r"train.batch_size=16 is not a multiple"):
        parse_config(tiny_config(**{"crimp.variation_draws": 3, "crimp.draws_split": True,
                                    "train.batch_size": 16}))


def test_train_step_with_variation_draws_counts_accuracy_per_image():
    run, models, fp, images, labels = _tiny_state(tiny_config(**{"crimp.variation_draws": 3}))
    task = crimp_task(run, models, 4)
    state = init_crimp_state(run, models, fp, images, task.tx)
    step = make_train_step(task, 8, 0.0, False, 1)
    state, m = step(state, images, labels, jnp.arange(16), jnp.int32(0), jax.random.key(0))
    state, m = step(state, images, labels, jnp.arange(16), jnp.int32(1), jax.random.key(0))
    assert np.isfinite(float(m[0])) and 0 <= float(m[1]) <= 8  # correct of 8 images, not 24


def test_fold_per_step_training_matches_the_bn_model_and_deploys_folded():
    """BatchNorm kept: evaluation folds with the running statistics, which at the start of the
    stage equal the float model's, so the stage starts from the float model's function; the
    batch statistics recorded for folding are the BN layers' input moments."""
    c = tiny_config(**{"crimp.batchnorm": "fold_per_step"})
    run, models, fp, data = _stage(c, 32)
    stats = crimp_mod.batch_statistics(models.bn, {**fp.params, **fp.model_state}, data.images)
    assert set(stats) == {"conv0", "conv1", "conv2"}
    x = models.bn.apply({**fp.params, **fp.model_state}, data.images, train=True,
                        mutable=["batch_stats"])[1]["batch_stats"]
    # flax's updated running mean = 0.9 * old (0) + 0.1 * batch mean
    np.testing.assert_allclose(np.asarray(x["conv0"]["bn"]["mean"]),
                               0.1 * np.asarray(stats["conv0"]["bn"]["mean"]), rtol=1e-4,
                               atol=1e-5)
    task = crimp_task(run, models, 4)
    state = init_crimp_state(run, models, fp, data.images, task.tx)
    ev, _ = task.forward(state.params, state.model_state, state.opt_state, data.images, False,
                         jax.random.key(0), 0)
    from crimp_jax.graph import fold_params
    from crimp_jax.quant import fake_quant_apply
    folded = fold_params(models.folded, fp.params["params"], fp.model_state["batch_stats"])
    want = fake_quant_apply(models.folded, folded, state.params["quant"], data.images, run.quant)
    np.testing.assert_array_equal(np.asarray(ev), np.asarray(want))
