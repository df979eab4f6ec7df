"""The integrated CRIMP process end to end on a tiny config: every stage, one trace, exact resume."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from crimp_jax.models.fold import init_folded
from crimp_jax.train import pipeline
from crimp_jax.train.checkpoint import StageCheckpointer
from crimp_jax.train.crimp import crimp_task, init_crimp_state
from crimp_jax.train.loop import DeviceData, make_train_step
from experiments.configs import quickstart
from tests.conftest import needs_data


def tiny(**over):
    c = quickstart.get_config("tiny")
    with c.unlocked():
        c.train.quiet = True
        for dotted, v in over.items():
            block, key = dotted.split("__")
            setattr(getattr(c, block), key, v)
    return c


@needs_data
def test_whole_chain_writes_every_section(tmp_path):
    s = pipeline.train_and_evaluate(tiny(), tmp_path)
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk["partial"] is False and on_disk["ablation"] == "crimp"
    acc = on_disk["accuracy"]
    assert acc["integer_engine"] == acc["fake_quant"] == s["test_accuracy"]
    assert acc["engine_agreement"] == 1.0 and acc["max_logit_diff"] == 0.0
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


@needs_data
def test_crimp_train_step_traces_once():
    c = tiny()
    train, _ = pipeline.load_data(c)
    data = DeviceData.put(train)
    model_f, folded = init_folded("tiny_cnn", data.images, jax.random.key(0))
    task = crimp_task(c, model_f, 4)
    traces, forward = [], task.forward

    def counting_forward(*args):
        traces.append(1)
        return forward(*args)

    task = task.__class__(task.name, counting_forward, task.tx, task.epochs, task.schedule)
    state = init_crimp_state(c, model_f, folded, data.images[:50], task.tx)
    step = make_train_step(task, 50, 0.0, True, 1)
    perm = jnp.arange(len(data))
    for i in range(4):  # crosses the zerorize -> recover boundary: still one trace
        state, m = step(state, data.images, data.labels, perm, jnp.int32(i % 4),
                        jax.random.key(i))
    assert np.isfinite(float(m[0]))
    assert len(traces) == 1


@needs_data
def test_resume_mid_zerorize_equals_uninterrupted(tmp_path):
    over = dict(crimp__alternating_epochs=3, evaluate__chips=0, evaluate__engine=False)
    full = pipeline.train_and_evaluate(tiny(**over), tmp_path / "full")
    # Stop after float epoch 1 + the first (zerorize) CRIMP epoch, then resume.
    cut = pipeline.train_and_evaluate(tiny(**over), tmp_path / "cut", stop_after_epoch=2)
    assert cut == {"interrupted": True, "stage": "crimp"}
    resumed = pipeline.train_and_evaluate(tiny(**over), tmp_path / "cut")
    assert resumed["test_accuracy"] == full["test_accuracy"]
    assert resumed["prune"]["sparsity"] == full["prune"]["sparsity"]

    def last(workdir):
        ck = StageCheckpointer(workdir, "crimp")
        step = ck.latest_step()
        restored = ck.manager.restore(step)
        ck.close()
        return step, restored

    (sa, a), (sb, b) = last(tmp_path / "full"), last(tmp_path / "cut")
    assert sa == sb == 3 * 4
    jax.tree.map(np.testing.assert_array_equal, a, b)  # params, thresholds, masks, momentum


def test_bad_method_and_sigma_rejected_before_compile(tmp_path):
    with pytest.raises(ValueError, match="method='qpv'"):
        pipeline.validate_blocks(_with(method="qpv"))
    with pytest.raises(ValueError, match="variation.sigma"):
        pipeline.validate_blocks(_with(**{"variation.sigma": 0.0}))
    with pytest.raises(ValueError, match="sigma=-0.1"):
        pipeline.validate_blocks(_with(**{"variation.sigma": -0.1}))
    with pytest.raises(ValueError, match="'conv99'"):
        pipeline.validate_blocks(_with(**{"quant.weight_rules": (("conv99", 4),)}))
    with pytest.raises(ValueError, match="'stem/'"):  # tiny_cnn has no stem
        pipeline.validate_blocks(_with(**{"prune.exclude": ("stem/",)}))
    with pytest.raises(ValueError, match="ramp_steps"):
        pipeline.validate_blocks(_with(**{"crimp.ramp_epochs": 3}))
    with pytest.raises(ValueError, match="evaluate.compensation"):
        pipeline.validate_blocks(_with(**{"evaluate.compensation": ("maybe",)}))
    for bad in (0, -2):  # (a float or bool is refused by the typed ConfigDict field itself)
        with pytest.raises(ValueError, match=rf"crimp.variation_draws={bad!r}: expected an int"):
            pipeline.validate_blocks(_with(**{"crimp.variation_draws": bad}))
    with pytest.raises(ValueError, match="crimp.draws_method='scan': expected one of"):
        pipeline.validate_blocks(_with(**{"crimp.draws_method": "scan"}))
    with pytest.raises(ValueError, match="variation_draws=2: only methods that train"):
        pipeline.validate_blocks(_with(method="qp", **{"crimp.variation_draws": 2,
                                                       "variation.sigma": 0.0}))


def _with(**over):
    c = quickstart.get_config("tiny")
    with c.unlocked():
        for dotted, v in over.items():
            node = c
            *parents, key = dotted.split(".")
            for p in parents:
                node = getattr(node, p)
            setattr(node, key, v)
    return c


def _tiny_folded():
    rng = np.random.default_rng(0)
    images = jnp.asarray(rng.integers(0, 256, (16, 32, 32, 3)), jnp.uint8)
    labels = jnp.asarray(rng.integers(0, 10, (16,)), jnp.int32)
    model_f, folded = init_folded("tiny_cnn", images, jax.random.key(0))
    return model_f, folded, images, labels


def test_variation_draws_average_loss_and_gradient_over_k_chips():
    """K = 2 draws: logits are the two single-draw forwards (keys fold_in(key, d)) stacked, the
    loss is their mean loss and the gradient their mean gradient; 'vmap' == 'unroll'."""
    from crimp_jax.train.loop import cross_entropy
    model_f, folded, images, labels = _tiny_folded()
    c1, c2 = _with(), _with(**{"crimp.variation_draws": 2})
    t1, t2 = crimp_task(c1, model_f, 4), crimp_task(c2, model_f, 4)
    state = init_crimp_state(c1, model_f, folded, images, t1.tx)
    key = jax.random.key(7)

    def loss(task, params, k):
        logits, _ = task.forward(params, {}, state.opt_state, images, True, k)
        return cross_entropy(logits, labels)

    logits2, _ = t2.forward(state.params, {}, state.opt_state, images, True, key)
    singles = [t1.forward(state.params, {}, state.opt_state, images, True,
                          jax.random.fold_in(key, d))[0] for d in (0, 1)]
    assert logits2.shape == (2, 16, 10)
    np.testing.assert_allclose(logits2, jnp.stack(singles), rtol=1e-5, atol=1e-5)
    assert not np.allclose(singles[0], singles[1])  # two different chips
    t3 = crimp_task(_with(**{"crimp.variation_draws": 2, "crimp.draws_method": "vmap"}),
                    model_f, 4)
    logits3, _ = t3.forward(state.params, {}, state.opt_state, images, True, key)
    np.testing.assert_allclose(logits3, logits2, rtol=1e-5, atol=1e-5)  # vmap == unrolled
    l2, g2 = jax.value_and_grad(lambda p: loss(t2, p, key))(state.params)
    parts = [jax.value_and_grad(lambda p, d=d: loss(t1, p, jax.random.fold_in(key, d)))(
        state.params) for d in (0, 1)]
    np.testing.assert_allclose(l2, (parts[0][0] + parts[1][0]) / 2, rtol=1e-5)
    jax.tree.map(lambda a, b, c: np.testing.assert_allclose(a, (b + c) / 2, rtol=1e-3,
                                                            atol=1e-5),
                 g2, parts[0][1], parts[1][1])
    # K = 1 keeps the single-draw path: the key itself, not fold_in(key, 0).
    one, _ = t1.forward(state.params, {}, state.opt_state, images, True, key)
    assert one.shape == (16, 10)
    # Evaluation ignores K: the deployed model on ideal devices.
    ev2, _ = t2.forward(state.params, {}, state.opt_state, images, False, key)
    ev1, _ = t1.forward(state.params, {}, state.opt_state, images, False, key)
    np.testing.assert_array_equal(ev2, ev1)


def test_train_step_with_variation_draws_counts_accuracy_per_image():
    model_f, folded, images, labels = _tiny_folded()
    c = _with(**{"crimp.variation_draws": 3})
    task = crimp_task(c, model_f, 4)
    state = init_crimp_state(c, model_f, folded, images, task.tx)
    step = make_train_step(task, 8, 0.0, False, 1)
    state, m = step(state, images, labels, jnp.arange(16), jnp.int32(0), jax.random.key(0))
    state, m = step(state, images, labels, jnp.arange(16), jnp.int32(1), jax.random.key(0))
    assert np.isfinite(float(m[0])) and 0 <= float(m[1]) <= 8  # correct of 8 images, not 24
