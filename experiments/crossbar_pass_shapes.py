"""How much of each layer the crossbar (whole-tile) pass removes, with and without the per-layer
cap, on a model's real layer shapes: python -m experiments.crossbar_pass_shapes [--out FILE]

For ResNet-20 (50%) and VGG-16 (88.25%), the layers the configs prune (all but the first conv
and the classifier), He-initialised weights folded with their init statistics (no training:
the tile scores are then nearly equal, so this isolates what the layer *shapes* do to the
pass), masks from `crimp_jax.prune.crimp_prune` with `prune.crossbar_layer_cap` 1 (no cap) and
0.5. Prints, per model and cap, the largest share of one layer's weights that whole-tile
pruning removed, the layers that lost more than half of themselves to it, and the crossbars
after re-packing; one JSON line each (and to FILE).
"""

from __future__ import annotations

import argparse
import dataclasses
import json

import jax
import numpy as np

from crimp_jax.models import build_network, init_folded
from crimp_jax.prune import PruneSpec, crimp_prune, layer_hardware, select_prunable
from crimp_jax.prune.groups import tile_keep_to_mask
from crimp_jax.utils.paths import flatten
from crimp_jax.xbar import XbarSpec

MODELS = {"resnet20": 0.5, "vgg16": 0.8825}


def measure(model_name: str, sparsity: float, cap: float, spec=XbarSpec()) -> dict:
    graph, folded = init_folded(build_network(model_name), jax.random.key(0))
    first, last = graph.layers[0]["name"], graph.layers[-1]["name"]
    cfg = PruneSpec(target_sparsity=sparsity, crossbar_layer_cap=cap,
                    exclude=(f"params/{first}/", f"params/{last}/"))
    flat = flatten({"params": folded})
    kernels = {p: flat[p] for p in select_prunable({"params": folded}, cfg)}
    res = crimp_prune(kernels, spec, cfg)
    by_tiles, tiles = {}, 0
    for path, k in kernels.items():
        kept = np.asarray(tile_keep_to_mask(res.tile_keep[path], k.shape, spec))
        by_tiles[path.removeprefix("params/")] = float(1.0 - kept.mean())
        tiles += int(layer_hardware(res.masks[path], spec, "crimp", 8)["tiles_after"])
    worst = max(by_tiles, key=by_tiles.get)
    return {"model": model_name, "target_sparsity": sparsity, "crossbar_layer_cap": cap,
            "sparsity": float(res.sparsity), "tiles_after": tiles,
            "largest_layer_share_removed_by_tiles": by_tiles[worst], "that_layer": worst,
            "layers_over_half_removed_by_tiles": sorted(p for p, v in by_tiles.items()
                                                        if v > 0.5)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="")
    a = ap.parse_args(argv)
    lines = []
    for model_name, sparsity in MODELS.items():
        for cap in (1.0, dataclasses.asdict(PruneSpec())["crossbar_layer_cap"]):
            lines.append(json.dumps(measure(model_name, sparsity, cap)))
            print(lines[-1], flush=True)
    if a.out:
        with open(a.out, "w") as f:
            f.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
