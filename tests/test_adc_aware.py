"""ADC-aware training (`crimp.adc_aware_epochs`): the straight-through estimator of
`graph.ops.CrossbarLayer.ste` (the crossbar-faithful value, the plain layer's gradient) and the
stage switching to a second compiled step for its last epochs (`Task.late`)."""

import dataclasses
import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from crimp_jax.config import parse_config
from crimp_jax.periphery import AdcSpec, DacSpec, Periphery
from crimp_jax.periphery.reader import crossbar_reader, ideal_reads
from crimp_jax.quant import fake_quant_apply, init_quant_state, make_plan
from crimp_jax.train.crimp import crimp_task, init_crimp_state
from crimp_jax.train.loop import epoch_calls, make_train_step
from crimp_jax.utils.blocks import ConfigError
from crimp_jax.utils.paths import flatten
from crimp_jax.xbar import XbarSpec
from tests.conftest import tiny_config
from tests.test_crimp_pipeline import _stage, counting_traces
from tests.test_integer_engine import _random_folded


def test_ste_has_the_product_value_and_the_plain_gradient():
    graph, params, x = _random_folded("tiny_cnn")
    x = x[:4]
    cfg = dict(weight_bits=8, act_bits=8)
    qstate = init_quant_state(graph, params, x, cfg)
    plan = make_plan(graph, cfg)

    @functools.partial(jax.jit, static_argnums=(1, 2))
    def logits(params, bits, ste):
        if bits is None:
            return fake_quant_apply(graph, params, qstate, x, cfg)
        per = Periphery(AdcSpec(bits=bits), DacSpec(bits=2), XbarSpec())
        xr = crossbar_reader(graph, plan, per, ideal_reads(per, plan.wbits), ste=ste)
        return fake_quant_apply(graph, params, qstate, x, cfg, crossbar=xr)

    @functools.partial(jax.jit, static_argnums=(1, 2))
    def loss(params, bits, ste):
        return jnp.sum(jnp.square(logits(params, bits, ste)))

    # a coarse ADC: the STE forward is the product's value ...
    coarse, ste = logits(params, 3, False), logits(params, 3, True)
    np.testing.assert_allclose(ste, coarse, rtol=1e-5, atol=1e-5 * float(jnp.max(jnp.abs(coarse))))
    assert not np.allclose(coarse, logits(params, None, False))  # 3 bits do round
    # ... and without the STE no gradient reaches the kernels through the product
    g_no = flatten(jax.grad(loss)(params, 3, False))  # (jit inside: bits, ste are static)
    kernels = [k for k in g_no if k.endswith("kernel")]
    assert kernels and all(float(jnp.max(jnp.abs(g_no[k]))) == 0 for k in kernels)
    # a lossless ADC (16 bits, the 'max' full scale): value and gradient of the plain layer
    g_ste, g_plain = jax.grad(loss)(params, 16, True), jax.grad(loss)(params, None, False)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
                 g_ste, g_plain)


def test_the_stage_switches_to_a_second_compiled_adc_aware_step():
    """Quantization only (the cheapest stage): 3 epochs of 2 steps, the last through the ADCs.
    The task's forward is the plain stage's (the same logits as without ADC-aware epochs); its
    `late` forward, from step 4 on, reads through the 5-bit ADCs; each step traces once."""
    o = {"method": "q", "crimp.dense_epochs": 3, "crimp.prune_epochs": 0,
         "crimp.finetune_epochs": 0, "crimp.adc_aware_epochs": 1.0, "adc.bits": 5, "dac.bits": 2}
    run, models, fp, data = _stage(tiny_config(**o), 64)
    task = crimp_task(run, models, 2)
    assert task.late is not None and task.late[0] == 4
    plain_task = crimp_task(parse_config(tiny_config(**{**o, "crimp.adc_aware_epochs": 0.0})),
                            models, 2)
    assert plain_task.late is None
    state = init_crimp_state(run, models, fp, data.images[:32], task.tx)
    x, key = data.images[:16], jax.random.key(3)

    def logits(forward):
        return forward(state.params, state.model_state, state.opt_state, x, True, key, 0)[0]

    np.testing.assert_array_equal(logits(task.forward), logits(plain_task.forward))
    assert not np.allclose(logits(task.late[1]), logits(task.forward))  # 5 bits do round
    early, traces = counting_traces(task)
    late, late_traces = counting_traces(task.late_task())
    steps = {False: make_train_step(early, 16, 0.0, True, 1),
             True: make_train_step(late, 16, 0.0, True, 1)}
    perm = jnp.arange(len(data))
    losses = []
    for epoch in range(3):
        for first, n, is_late in epoch_calls(2, 1, epoch, task.late[0]):
            state, m = steps[is_late](state, data.images, data.labels, perm, jnp.int32(first),
                                      jax.random.key(epoch))
            losses.append((int(state.step), is_late, float(m[0])))
    assert [(s, is_late) for s, is_late, _ in losses] == [
        (1, False), (2, False), (3, False), (4, False), (5, True), (6, True)]
    assert np.all(np.isfinite([v for *_, v in losses]))
    assert len(traces) == 1 and len(late_traces) == 1


def test_epoch_calls_split_the_fused_call_the_switch_falls_in():
    """fit's calls of one epoch (first batch, steps, late), hand-written: 5 steps per epoch,
    2 fused per call; epoch 1 starts at stage step 5, the late forward at step 8."""
    assert epoch_calls(5, 2, 0) == [(0, 2, False), (2, 2, False), (4, 1, False)]
    assert epoch_calls(5, 2, 1, 8) == [(0, 2, False), (2, 1, False), (3, 1, True),
                                       (4, 1, True)]
    assert epoch_calls(5, 2, 1, 7) == [(0, 2, False), (2, 2, True), (4, 1, True)]
    assert epoch_calls(4, 1, 2, 0) == [(i, 1, True) for i in range(4)]


def test_adc_aware_training_needs_finite_adcs():
    with pytest.raises(ConfigError, match=r"crimp.adc_aware_epochs=1.0 trains through the "
                                          r"ADCs, but adc.bits=0"):
        parse_config(tiny_config(**{"crimp.adc_aware_epochs": 1.0}))


@pytest.mark.parametrize("scan_steps, late_step", [(1, 4), (2, 3)])
def test_fit_runs_the_late_forward_from_its_step_on(tmp_path, scan_steps, late_step):
    """`fit` with `Task.late`: a toy linear task whose forwards count their own steps in the
    model state; 3 epochs of 2 steps (fused in pairs with scan_steps 2, where the switch at
    step 3 falls inside a pair) run steps [0, late_step) plain and the rest late."""
    import optax

    from crimp_jax.train.loop import DeviceData, Task, fit
    from crimp_jax.train.metrics import MetricWriter
    from crimp_jax.train.state import TrainState

    def forward_counting(name):
        def forward(params, model_state, opt_state, images, train, key, step):
            logits = images.reshape(images.shape[0], -1).astype(jnp.float32) @ params["w"]
            if train:
                model_state = {**model_state, name: model_state[name] + 1}
            return logits, model_state
        return forward

    seen = []  # the state steps `late_setup` is called with

    def setup(state):
        seen.append(int(state.step))
        return forward_counting("late")

    task = Task("toy", forward_counting("plain"), optax.sgd(1e-4), 3, None, None,
                (late_step, forward_counting("plain")), setup)
    rng = np.random.default_rng(0)
    data = DeviceData(jnp.asarray(rng.integers(0, 256, (8, 2, 2, 3)), jnp.uint8),
                      jnp.asarray(rng.integers(0, 10, 8), jnp.int32))
    def fresh():  # (fit donates the state it is given)
        params = {"w": jnp.zeros((12, 10))}
        return TrainState(jnp.int32(0), params, {"plain": jnp.int32(0), "late": jnp.int32(0)},
                          task.tx.init(params))

    tcfg = dataclasses.replace(parse_config(tiny_config()).train, batch_size=4, augment=False,
                               scan_steps=scan_steps, quiet=True)
    state, _ = fit(task, fresh(), data, data, tcfg, tmp_path, MetricWriter(tmp_path),
                   jax.random.key(0))
    assert int(state.step) == 6
    assert int(state.model_state["plain"]) == late_step
    assert int(state.model_state["late"]) == 6 - late_step
    # `late_setup` builds the late forward once, from the state at the late step
    assert seen == [late_step]
    # a resume after epoch 2 of 3 (step 4; past the switch when it is at step 3) builds it
    # from the restored state
    seen.clear()
    stop = tmp_path / "stopped"
    fit(task, fresh(), data, data, tcfg, stop, MetricWriter(stop), jax.random.key(0), 2)
    assert seen == ([late_step] if late_step < 4 else [])
    seen.clear()
    state, _ = fit(task, fresh(), data, data, tcfg, stop, MetricWriter(stop), jax.random.key(0))
    assert seen == [4] and int(state.model_state["late"]) == 6 - late_step


def test_adc_full_scales_calibrated_when_the_adc_aware_phase_begins(tmp_path):
    """crimp.adc_calibrate_at='phase_start': the late forward's ADC references are those of
    the state it is built from (here the stage's start state with every kernel doubled, as
    training would change it), written to adc_references.json and read back by a resume past
    that step (measured again from a state before it: a stale file);
    'stage_start' fixes them on the stage's start state; a damaged file is one clear error."""
    from crimp_jax.evaluate import chips
    from crimp_jax.train.crimp import deployed_folded
    from crimp_jax.train.pipeline import _adc_aware_task

    o = {"method": "q", "crimp.dense_epochs": 2, "crimp.prune_epochs": 0,
         "crimp.finetune_epochs": 0, "crimp.adc_aware_epochs": 1.0, "adc.bits": 5,
         "dac.bits": 1, "adc.full_scale_ref": "calibrated", "adc.calib_images": 16,
         "crimp.adc_calibrate_at": "phase_start"}
    run, models, fp, data = _stage(tiny_config(**o), 64)
    start = init_crimp_state(run, models, fp, data.images[:32], crimp_task(run, models, 2).tx)
    params = start.params["params"]
    later = start.replace(step=jnp.int32(2), params={**start.params, "params": jax.tree.map(
        lambda x: 2 * x, params)})

    def refs(st):
        return chips.calibrated_periphery(run, models.folded, deployed_folded(run, models, st),
                                          st.params["quant"], None, data.images).references

    task = _adc_aware_task(run, models, models.folded, start, 2, data.images, tmp_path)
    assert task.late[0] == 2 and task.late_setup is not None
    assert not task.forward.keywords["per"].references  # the plain steps read no ADC
    per = task.late_task(later).forward.keywords["per"]
    assert per.references == refs(later) != refs(start)
    saved = json.loads((tmp_path / "adc_references.json").read_text())
    assert saved["step"] == 2
    # a resume past the phase's start reads the file: the references of the phase's start
    resumed = later.replace(step=jnp.int32(3), params=start.params)
    assert task.late_task(resumed).forward.keywords["per"].references == refs(later)
    # a file from after the state (a stale one: the state is before the phase's start it
    # records) is measured again on the state and rewritten
    assert task.late_task(start).forward.keywords["per"].references == refs(start)
    assert json.loads((tmp_path / "adc_references.json").read_text())["step"] == 0
    # 'stage_start': the start state's references from the first step on
    run_s = parse_config(tiny_config(**{**o, "crimp.adc_calibrate_at": "stage_start"}))
    task_s = _adc_aware_task(run_s, models, models.folded, start, 2, data.images,
                             tmp_path / "s")
    assert task_s.late_setup is None
    assert task_s.late[1].keywords["per"].references == refs(start)
    (tmp_path / "adc_references.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"adc_references.json: not a readable ADC-reference "
                                         r"file .*delete it"):
        task.late_task(later)


def test_adc_calibrate_at_is_checked():
    with pytest.raises(ConfigError, match=r"crimp.adc_calibrate_at='layer_start'"):
        parse_config(tiny_config(**{"crimp.adc_calibrate_at": "layer_start"}))
