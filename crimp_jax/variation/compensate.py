"""Self-compensation: per-physical-column gains from an all-ones read, rounded to S+A forms.

After programming, a chip drives every used row of a crossbar with 1 and reads each physical
column (one bit-slice of one polarity array of one tile): measured = sum of its cells'
conductances. The intended sum is known from the integer weights, so gain = intended / measured,
rounded to what the shift-and-add unit applies, multiplies that column's output before the
slices and tiles are summed. Gains are chip state, not parameters: no gradient flows through them.

Forms (`comp_form`):
  po2      2^e, e = round(log2 g). Gains cluster near 1, so this mostly rounds to 1.
  po2_pm   the nearest of 2^e and 2^e * (1 +/- 2^-m), 1 <= m <= m_max: two shifts and one add.
  exact    the float gain itself (a reference for how much rounding costs).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _ldexp(x, e):
    """x * 2^e exactly (e integer-valued)."""
    return jnp.ldexp(x, e.astype(jnp.int32))


def pm_mantissas(m_max: int) -> jnp.ndarray:
    """Allowed values of g / 2^floor(log2 g) in [1, 2] for the 'po2_pm' form."""
    vals = {1.0, 2.0}
    for m in range(1, m_max + 1):
        vals.add(1.0 + 2.0 ** -m)  # 2^e (1 + 2^-m)
        vals.add(2.0 - 2.0 ** (1 - m))  # 2^(e+1) (1 - 2^-m)
    return jnp.asarray(sorted(vals), jnp.float32)


def round_gain(gain, form: str = "po2_pm", m_max: int = 6):
    """Rounds positive gains to the shift-and-add `form` (see module docstring)."""
    gain = jnp.asarray(gain, jnp.float32)
    if form == "exact":
        return gain
    e0 = jnp.floor(jnp.log2(gain))
    if form == "po2":
        return _ldexp(jnp.ones_like(gain), jnp.round(jnp.log2(gain)))
    if form != "po2_pm":
        raise ValueError(f"comp_form={form!r}: expected 'po2', 'po2_pm' or 'exact'")
    x = _ldexp(gain, -e0)  # in [1, 2) up to log2 rounding; the candidates cover both ends
    cands = pm_mantissas(m_max)
    best = jnp.argmin(jnp.abs(x[..., None] - cands), axis=-1)
    return _ldexp(cands[best], e0)


def column_gains(intended, measured, form: str = "po2_pm", m_max: int = 6):
    """Per-column gains intended / measured, rounded; 1 where either sum is not positive.

    A column with nothing programmed (or, with additive noise, a non-positive read) keeps gain 1.
    The result is wrapped in `stop_gradient`.
    """
    ok = (intended > 0) & (measured > 0)
    raw = jnp.where(ok, intended / jnp.where(ok, measured, 1.0), 1.0)
    return jax.lax.stop_gradient(jnp.where(ok, round_gain(raw, form, m_max), 1.0))
