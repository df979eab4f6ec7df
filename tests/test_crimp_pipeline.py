"""The integrated CRIMP process end to end on a tiny config: every stage, one trace, exact resume."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from crimp_jax.models import build_model
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
    model = build_model("tiny_cnn")
    v = model.init(jax.random.key(0), data.images[:1])
    from crimp_jax.models.fold import fold_batchnorm
    folded = fold_batchnorm(v["params"], v["batch_stats"], "tiny_cnn")
    model_f = build_model("tiny_cnn", folded=True)
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
