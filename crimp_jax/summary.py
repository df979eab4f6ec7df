"""The one schema of `summary.json`: writing it, reading it back, and its names.

A run writes one `summary.json` into its workdir (`write_summary`, atomically, also while the
run is in progress, marked partial); the console summary, the report, the results tables and
the sweep runner read it with `read_summary` and the accessors of `Summary`, never by
re-parsing keys themselves. Top-level keys:

  schema            SCHEMA_VERSION
  model, num_params, method ('fp', 'q', 'qp', 'qv', 'crimp'), epochs, train_images, test_images
  accuracy          {fp, fake_quant, integer_engine, engine_agreement, engine_exact_logits,
                     max_logit_diff} (fractions; absent where a stage did not run)
  test_accuracy     the deployed model's accuracy (fake-quant for quantized methods)
  stages            [{stage, epochs, epoch_s_median, test_accuracy}]
  selection         model selection of the quantized stage (`crimp.select_chips`): {chips,
                     sigma, compensation, val_images, scores: [{epoch, step, mean, std}],
                     chosen_epoch}, or null
  quant             {weight_bits, act_bits, scale, per_channel} or null
  prune             pruning report (`train.analysis.prune_report`) or null
  montecarlo        {chips, sigmas, test_images, headline_sigma, variation, adc, dac, figure,
                     adc_references: {layer: calibrated ADC reference in levels, a list
                       per slice with adc.full_scale_per='slice'} of the
                       run's own ADCs (adc.bits > 0, full_scale_ref 'calibrated') or null
                       (an ADC sweep's are its adc_sweep.references),
                     curves: {curve: {sigma_key(sigma): accuracy statistics}},
                     adc_sweep / dac_sweep (if swept): {curve, sigmas, bits, figure,
                       accuracy: {sigma_key: {bits: statistics}}, ideal: {sigma_key:
                       statistics} (ideal ADCs), within_0.5_points: {sigma_key: bits or null}
                       (ADC), full_scale_ref and references (ADC), cost: {bits:
                       `cost.cost_summary` essentials} or null},
                     drift_sweep (if swept): {sigma, times_s, nu_mean, nu_std, t0_s, figure,
                       curves: {curve: {time_key(t): statistics}}},
                     knob_sweep (if `evaluate.knob`): {knob, doc, values, sigmas (null for
                       the sigma knob), figure, curves: {curve: {sigma_key (or '-'):
                       {knob_key(value): statistics}}}},
                     quantile_sweep (if `evaluate.calib_quantiles`): {curve, dac_bits,
                       full_scale_per, read, quantiles, sigmas, bits, accuracy: {'%g' of the
                       quantile: {sigma_key: {bits: statistics}}}, ideal, within_0.5_points:
                       {quantile: {sigma_key: bits or null}}, references: {quantile:
                       adc_references}}} or null
                     (each section one registered evaluator, `evaluate.evaluators`)
  cost              `cost.cost_summary` or null
  partial, wall_s, device, date, command, config

Monte Carlo curves are named by what the run did (`curve_name`): without variation-aware
training 'neither' (compensation off) and 'compensation' (on); with it 'adaptation' and 'both'.
Sigma keys are `sigma_key(sigma)` ('%g': '0', '0.3').
"""

from __future__ import annotations

import json
from pathlib import Path

SCHEMA_VERSION = 2
FILENAME = "summary.json"

CURVE_LABELS = {  # Monte Carlo curves, in plotting order
    "neither": "no adaptation, no compensation",
    "compensation": "self-compensation only",
    "adaptation": "variation-aware training only",
    "both": "training + self-compensation (CRIMP)",
}
CURVE_ORDER = tuple(CURVE_LABELS)
# The curve a one-line summary reports first: the run's own deployment (both > adaptation
# > compensation > neither).
HEADLINE_PREFERENCE = ("both", "adaptation", "compensation", "neither")


def curve_name(variation_trained: bool, compensation: bool) -> str:
    """Name of a Monte Carlo curve: what training and the chip did."""
    return {(False, False): "neither", (False, True): "compensation",
            (True, False): "adaptation", (True, True): "both"}[(variation_trained, compensation)]


def sigma_key(sigma) -> str:
    """JSON key of a sigma value: '0', '0.1', ... ('%g')."""
    return f"{float(sigma):g}"


def time_key(seconds) -> str:
    """JSON key of a read time in seconds: '20', '3600', '3.1536e+07' ('%g')."""
    return f"{float(seconds):g}"


class SummaryError(ValueError):
    """A summary.json that is missing, not JSON, or not a JSON object."""


def write_summary(workdir, summary: dict) -> Path:
    """Writes `workdir`/summary.json atomically (a reader never sees half a file)."""
    path = Path(workdir) / FILENAME
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"schema": SCHEMA_VERSION, **summary}, indent=1, default=float))
    tmp.replace(path)
    return path


def read_summary(path) -> "Summary":
    """The Summary in `path` (a summary.json or a workdir holding one)."""
    path = Path(path)
    if path.is_dir() or not path.name.endswith(".json"):
        path = path / FILENAME
    if not path.is_file():
        why = "no such directory" if not path.parent.is_dir() else f"no {FILENAME} in it"
        raise SummaryError(f"workdir {str(path.parent)!r}: {why} (has the run finished?)")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise SummaryError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise SummaryError(f"{path}: holds a {type(data).__name__}, expected a JSON object")
    return Summary(data)


class Summary:
    """Read access to one run's summary (a parsed summary.json)."""

    def __init__(self, data: dict):
        self.data = data

    def get(self, dotted: str, default=None):
        """data['a']['b'] for 'a.b'; `default` when any level is absent or null."""
        value = self.data
        for key in dotted.split("."):
            if not isinstance(value, dict) or value.get(key) is None:
                return default
            value = value[key]
        return value

    # --- identity ------------------------------------------------------------------------
    @property
    def model(self):
        return self.get("model")

    @property
    def method(self):
        return self.get("method")

    @property
    def partial(self) -> bool:
        return bool(self.get("partial", False))

    # --- accuracy ------------------------------------------------------------------------
    @property
    def fp_accuracy(self):
        return self.get("accuracy.fp")

    @property
    def deployed_accuracy(self):
        return self.get("test_accuracy")

    @property
    def engine_accuracy(self):
        return self.get("accuracy.integer_engine")

    # --- Monte Carlo ---------------------------------------------------------------------
    @property
    def headline_sigma(self) -> float | None:
        """The run's `evaluate.headline_sigma` (from its config)."""
        value = self.get("config.evaluate.headline_sigma", self.get("montecarlo.headline_sigma"))
        return None if value is None else float(value)

    def curves(self) -> dict:
        """{curve: {sigma (float): statistics}} in plotting order (empty without Monte Carlo)."""
        raw = self.get("montecarlo.curves") or {}
        names = sorted(raw, key=lambda c: (CURVE_ORDER.index(c) if c in CURVE_ORDER
                                           else len(CURVE_ORDER), c))
        return {name: {float(k): v for k, v in sorted(raw[name].items(), key=lambda kv:
                                                       float(kv[0]))} for name in names}

    def mc(self, curve: str, sigma) -> dict | None:
        """Statistics of `curve` at `sigma` ({mean, std, min, p5, median, max, n_chips})."""
        return (self.get("montecarlo.curves") or {}).get(curve, {}).get(sigma_key(sigma))

    def headline_curve(self) -> str | None:
        """The curve a one-line summary reports: the run's own deployment."""
        curves = self.get("montecarlo.curves") or {}
        return next((c for c in HEADLINE_PREFERENCE if c in curves), None)

    @property
    def mc_sigmas(self) -> list:
        return [float(s) for s in self.get("montecarlo.sigmas") or []]

    # --- pruning, crossbars, cost --------------------------------------------------------
    @property
    def sparsity(self):
        return self.get("prune.sparsity")

    def crossbars(self):
        """(dense tiles, tiles after re-packing) from the pruning report, else the cost model."""
        t = self.get("prune.totals")
        if t and t.get("tiles_dense") is not None:
            return t["tiles_dense"], t.get("tiles_after")
        if self.get("cost.dense_tiles") is not None:
            return self.get("cost.dense_tiles"), self.get("cost.tiles")
        return None

    def reduction(self, what: str, reference: str = "original"):
        """Power ('power') or area ('area') reduction against a cost reference."""
        return self.get(f"cost.{what}_reduction.{reference}")
