"""Report command: tables and figures from fixture workdirs, missing summaries, missing sections.

The fixture summaries follow the pipeline's summary.json schema; their 'prune' and 'cost'
entries come from the real functions (crimp_masks, layer_table, totals, reductions,
cost_summary) on tiny_cnn, so a schema change there shows up here.
"""

import json

import jax
import pytest

from crimp_jax.cost import cost_summary, reductions
from crimp_jax.models import build_network
from crimp_jax.prune import PruneSpec, crimp_masks, layer_table, totals
from crimp_jax.utils.paths import flatten, kernel_paths
from crimp_jax.xbar import XbarSpec
from experiments import report as report_cli

SPEC = XbarSpec(rows=32, cols=16)


@pytest.fixture(scope="module")
def pruned_tiny_cnn():
    params = build_network("tiny_cnn").init(jax.random.key(0))["params"]
    flat = flatten(params)
    kernels = {p: flat[p] for p in kernel_paths(params)}
    masks = crimp_masks(kernels, SPEC, PruneSpec(target_sparsity=0.6, min_keep=0.05))
    rows = layer_table(masks, SPEC, 8)
    cost = cost_summary(reductions(params, SPEC, 8, masks))
    return rows, cost


def mc_curves(names, base):
    return {n: {s: {"mean": base - i * 0.01 - float(s) * 0.2, "std": 0.005 + float(s) * 0.02,
                    "min": base - 0.05 - float(s) * 0.3, "p5": base - 0.03 - float(s) * 0.25}
                for s in ("0", "0.1", "0.3", "0.5")} for i, n in enumerate(names)}


def write_run(workdir, summary, metrics=()):
    workdir.mkdir(parents=True)
    (workdir / "summary.json").write_text(json.dumps(summary))
    if metrics:
        (workdir / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in metrics))
    return workdir


def base_summary(method, **extra):
    return {"schema": 2, "model": "tiny_cnn", "num_params": 14934, "method": method, "epochs": 5,
            "train_images": 1000, "test_images": 500, "wall_s": 125.0,
            "device": {"platform": "cpu", "kind": "cpu", "count": 1, "jax": "0.10.2"},
            "date": "2025-01-02T03:04:05+00:00",
            "command": f"python -m experiments.run --config=quickstart.py:{method}",
            "config": {"evaluate": {"headline_sigma": 0.3}}, **extra}


def epochs(stages):
    out, step = [], 0
    for stage, accs in stages.items():
        for e, acc in enumerate(accs, 1):
            step += 10
            out.append({"step": step, "time": 1e9 + step, "stage": stage, "epoch": e,
                        "train_loss": 2.0 - acc, "train_accuracy": acc + 0.05, "epoch_s": 1.5,
                        "lr": 0.1, "test_accuracy": acc, "test_loss": 2.1 - acc})
    return out


@pytest.fixture(scope="module")
def workdirs(tmp_path_factory, pruned_tiny_cnn):
    rows, cost = pruned_tiny_cnn
    root = tmp_path_factory.mktemp("runs")
    prune = {"target_sparsity": 0.6, "sparsity": totals(rows)["sparsity"], "layers": rows,
             "totals": totals(rows)}
    crimp = write_run(root / "crimp_run", base_summary(
        "crimp", test_accuracy=0.8123,
        accuracy={"fp": 0.8456, "fake_quant": 0.8301, "integer_engine": 0.8299,
                  "engine_agreement": 0.998, "max_logit_diff": 0.0},
        stages=[{"stage": "fp", "epochs": 3, "epoch_s_median": 1.25, "test_accuracy": 0.8456},
                {"stage": "crimp", "epochs": 2, "epoch_s_median": 2.5, "test_accuracy": 0.8123}],
        quant={"weight_bits": 8, "act_bits": 8, "scale": "po2"}, prune=prune,
        montecarlo={"chips": 8, "test_images": 500, "sigmas": [0, 0.1, 0.3, 0.5],
                    "curves": mc_curves(["adaptation", "both"], 0.81)},
        cost=cost), epochs({"fp": [0.5, 0.7, 0.8456], "crimp": [0.79, 0.8123]}))
    # A quantized + pruned run trained without variation, with no cost entry and no stages.
    qp = write_run(root / "qp_run", base_summary(
        "qp", test_accuracy=0.8011, accuracy={"fp": 0.8456, "fake_quant": 0.8201,
                                              "integer_engine": None},
        quant={"weight_bits": 8, "act_bits": 8, "scale": "po2"}, prune=prune,
        montecarlo={"chips": 8, "test_images": 500, "sigmas": [0, 0.1, 0.3, 0.5],
                    "curves": mc_curves(["neither", "compensation"], 0.785)},
        cost=None), epochs({"fp": [0.6, 0.75], "crimp": [0.78, 0.8011]}))
    # A float baseline from an older pipeline: most keys absent, no metrics.jsonl.
    fp = write_run(root / "fp_run", {"model": "tiny_cnn", "test_accuracy": 0.8456,
                                     "epochs": 3, "command": "python -m experiments.run"})
    return crimp, qp, fp


def test_report_tables_and_figures(workdirs, tmp_path, pruned_tiny_cnn, capsys):
    rows, cost = pruned_tiny_cnn
    out = tmp_path / "report"
    assert report_cli.main([*map(str, workdirs), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out / 'report.md'}"
    text = (out / "report.md").read_text()
    # accuracy: one row per workdir, with its method and the values of its summary
    assert ("| crimp_run | crimp (full CRIMP (quantized + pruned + variation-aware)) | W8/A8 po2 "
            "| 84.56% | 83.01% | 82.99% | 99.80% | 0 | 60.59% | 81.23% | -3.33 |") in text
    assert "| qp_run | qp (quantized + pruned) | W8/A8 po2 | 84.56% | 82.01% | n/a |" in text
    assert "| fp_run | n/a | float | n/a | n/a | n/a | n/a | n/a | n/a | 84.56% | n/a |" in text
    # provenance: command, device and date of each run
    assert "- crimp_run: `python -m experiments.run --config=quickstart.py:crimp`" in text
    assert "| cpu x1 (cpu, jax 0.10.2) | 2025-01-02T03:04:05+00:00 | 2.1 min |" in text
    # Monte Carlo: mean, std, min, p5 per sigma per curve (sigma 0.3 of 'both': 0.81-0.01-0.06)
    assert ("| crimp_run | both (training + self-compensation (CRIMP)) | 0.3 | 8 | 500 | 74.00% | 1.10% | "
            "67.00% | 70.50% | -10.56 |") in text
    for curve in ("neither", "adaptation", "compensation", "both"):
        assert f"| {curve} (" in text
    # sparsity, crossbars (from the pruning totals) and cost (from cost_summary)
    t = totals(rows)
    assert f"| crimp_run | 60.00% | {100 * t['sparsity']:.2f}% | {t['weights']:,} |" in text
    assert "| conv2/conv/kernel |" in text  # per-layer table
    assert (f"| crimp_run | pruning report | {t['tiles_dense']} | {t['tiles_after']} | "
            f"{t['arrays_dense']} | {t['arrays_after']} | "
            f"{t['tiles_dense'] / t['tiles_after']:.2f}x |") in text
    assert (f"| crimp_run | original (dense, FP32 scales) | "
            f"{cost['reference_power_mw']['original']:,.1f} | "
            f"{cost['reference_area_mm2']['original']:.4f} | "
            f"{cost['power_reduction']['original']:.2f}x | "
            f"{cost['area_reduction']['original']:.2f}x |") in text
    assert f"| crimp_run | CRIMP (this run) | {cost['power_mw']:,.1f} |" in text
    # stages and the runs lacking a section are named in a note
    assert "| crimp_run | crimp | 2 | 2.50 | 81.23% |" in text
    assert "_Not in qp_run, fp_run: summary.json has no 'cost'._" in text
    assert "_Not in fp_run: summary.json has no 'montecarlo'._" in text
    pngs = ["accuracy_vs_sigma.png", "sparsity_per_layer.png", "training_curves.png",
            "crossbars_crimp_run.png", "crossbars_qp_run.png", "cost_breakdown_crimp_run.png"]
    for name in pngs:
        assert (out / name).stat().st_size > 0, name
        assert f"]({name})" in text
    assert not (out / "cost_breakdown_qp_run.png").exists()
    assert "failed" not in text


def test_missing_summary_is_one_line_exit_2(workdirs, tmp_path, capsys):
    empty = tmp_path / "not_a_run"
    empty.mkdir()
    assert report_cli.main([str(workdirs[0]), str(empty)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: workdir {str(empty)!r}: no summary.json in it (has the run finished?)"
    assert not (workdirs[0] / "report.md").exists()  # nothing written before the check
    assert report_cli.main([str(tmp_path / "nowhere")]) == 2
    assert "no such directory" in capsys.readouterr().err


def test_sections_missing_everywhere_become_notes(workdirs, tmp_path):
    out = tmp_path / "fp_only"
    assert report_cli.main([str(workdirs[2]), "--out", str(out)]) == 0
    text = (out / "report.md").read_text()
    for note in ("_No run has Monte Carlo results (summary.json 'montecarlo')._",
                 "_No run is pruned (summary.json 'prune')._",
                 "_No run has a hardware cost (summary.json 'cost')._",
                 "_No run has crossbar counts (summary.json 'prune' or 'cost')._",
                 "_No figure: no run has 'montecarlo' curves._",
                 "_No figure: no run has per-epoch test accuracy in metrics.jsonl._"):
        assert note in text
    assert list(out.glob("*.png")) == []
    assert "| fp_run |" in text


def test_default_out_is_first_workdir(workdirs):
    assert report_cli.main([str(workdirs[1])]) == 0
    assert (workdirs[1] / "report.md").is_file()
    assert (workdirs[1] / "accuracy_vs_sigma.png").stat().st_size > 0


def test_cost_only_run_uses_cost_counts_and_totals_without_split(tmp_path, pruned_tiny_cnn):
    _, cost = pruned_tiny_cnn
    old = {k: v for k, v in cost.items() if not k.endswith("_by_component")}  # older summary
    run = write_run(tmp_path / "cost_only", base_summary("q", test_accuracy=0.83, cost=old))
    assert report_cli.main([str(run)]) == 0
    text = (run / "report.md").read_text()
    dense_arrays = sum(v[0] for v in cost["per_layer_crossbars"].values())
    assert (f"| cost_only | cost model | {cost['dense_tiles']} | {cost['tiles']} | "
            f"{dense_arrays} | {cost['crossbars']} |") in text
    assert "computing power (W) and area (mm^2) by component (totals only)" in text
    for name in ("crossbars_cost_only.png", "cost_breakdown_cost_only.png"):
        assert (run / name).stat().st_size > 0


def test_proxy_table_reproduces_the_committed_benchmark_table(tmp_path):
    """experiments.proxy_table over the committed benchmark runs (results/resnet20_proxy holds
    each run's summary.json) writes the committed table.json numbers: drops against fp_long in
    points, crossbars, and Monte Carlo keyed by sigma_key with compensation off / on."""
    import json
    from pathlib import Path

    from experiments import proxy_table
    root = Path(__file__).resolve().parents[1] / "results" / "resnet20_proxy"
    assert proxy_table.main([str(root), "--out", str(tmp_path)]) == 0
    got = json.loads((tmp_path / "table.json").read_text())
    runs = {r["run"]: r for r in got["runs"]}
    assert list(runs) == ["q", "qp50", "qp80", "qv", "crimp"]
    crimp = runs["crimp"]
    assert crimp["accuracy"] == 0.6434 and crimp["accuracy_source"] == "integer engine"
    assert abs(crimp["drop_vs_fp_long"] - 100 * (0.6712 - 0.6434)) < 1e-9
    assert crimp["crossbars"] == {"dense": 57, "after": 32}
    assert set(crimp["mc"]) == {"0", "0.3", "0.5"}
    assert abs(crimp["mc"]["0.3"]["on"]["mean"] - 0.62165) < 5e-4
    assert runs["q"]["target_sparsity"] == 0.0 and runs["qp80"]["target_sparsity"] == 0.8
    committed = json.loads((root / "table.json").read_text())
    assert got == committed
    assert (tmp_path / "crimp" / "summary.json").is_file()
