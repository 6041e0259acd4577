"""Text of figure legends, titles and axis labels: physical symbols in mathtext, values as a
paper would print them.

A run-file key becomes its symbol (``disorder.W`` -> W, ``W_over_J`` -> W/J,
``dynamics.waiting_time`` -> t_w) and a value becomes the shortest exact form that a reader
recognises: an integer, a small fraction (1/7), a square root (sqrt(97)), a power of ten
(10^4), or else four significant digits. The recognition is exact to 1e-9 relative, so
9.848857801796104 is printed as sqrt(97) but 9.8 stays 9.8.
"""
import math

import numpy as np
from fractions import Fraction

# run-file key (dotted, or a sweep helper) -> mathtext symbol
SYMBOLS = {
    "disorder.W": "W",
    "disorder.J": "J",
    "disorder.delta0_min": r"\Delta_{0,\min}",
    "disorder.delta0_max": r"\Delta_{0,\max}",
    "model.N": "N",
    "model.temperature": "T",
    "model.dimension": "d",
    "model.density": "n",
    "model.filling": "K",
    "model.xi": r"\xi",
    "model.a": "a",
    "model.gamma0": r"\Gamma_0",
    "dynamics.waiting_time": "t_w",
    "dynamics.pulse_strength": "F",
    "dynamics.initial_temperature": "T_0",
    "dynamics.hop_cutoff": r"r_{\mathrm{cut}}",
    "W_over_J": "W/J",
    "W_over_T": "W/T",
    "W2_plus_J2": "W^2 + J^2",
}

# time and rate units of the two models, in mathtext
TIME_UNIT = {"tls": r"1/(aJ^3)", "electron": r"1/\Gamma_0"}
RATE_UNIT = {"tls": r"aJ^3", "electron": r"\Gamma_0"}
KIND = {"tls": "TLS glass", "electron": "electron glass"}

_RTOL = 1e-9


def symbol(key):
    """Mathtext symbol (without $) of a run-file key; unknown keys print as upright text."""
    if key in SYMBOLS:
        return SYMBOLS[key]
    name = key.split(".")[-1].replace("_", r"\_")
    return rf"\mathrm{{{name}}}"


def _close(a, b):
    return abs(a - b) <= _RTOL * max(1.0, abs(a), abs(b))


def value_tex(value):
    """Mathtext (without $) of a number in its most recognisable exact form.

    In order: infinity; powers of ten from 1e4 up or 1e-3 down (10^4); integers; decimals
    that 4 significant digits hold exactly (3.1, 0.05); fractions p/q with q <= 12 (1/7);
    p sqrt(n)/q with squarefree n <= 1000 and q <= 12 (sqrt(97), sqrt(97)/7); anything
    else with 4 significant digits.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return rf"\mathrm{{{value}}}"
    v = float(value)
    if math.isinf(v):
        return r"\infty" if v > 0 else r"-\infty"
    if math.isnan(v):
        return r"\mathrm{nan}"
    sign = "-" if v < 0 else ""
    a = abs(v)
    if a == 0.0:
        return "0"
    exponent = round(math.log10(a))
    if (exponent >= 4 or exponent <= -3) and _close(a, 10.0 ** exponent):
        return f"{sign}10^{{{exponent}}}"
    if _close(a, round(a)) and a < 1e4:
        return f"{sign}{round(a)}"
    short = f"{a:.4g}"
    if _close(a, float(short)) and 1e-3 <= a < 1e4:
        return f"{sign}{short}"   # a decimal as typed (3.1, 0.05) stays a decimal
    frac = Fraction(a).limit_denominator(12)
    if frac.denominator > 1 and _close(a, float(frac)):
        return rf"{sign}{frac.numerator}/{frac.denominator}"
    # a = p sqrt(n) / q  <=>  a^2 = p^2 n / q^2: try a^2 q^2 integer for small q
    for q in range(1, 13):
        n2 = a * a * q * q
        m = round(n2)
        if 1 < m <= 1000 * 144 and _close(n2, m):
            p, n = _split_square(m)
            if n > 1 and n <= 1000:
                g = math.gcd(p, q)
                p, q2 = p // g, q // g
                root = rf"\sqrt{{{n}}}"
                num = root if p == 1 else f"{p}{root}"
                return f"{sign}{num}" if q2 == 1 else f"{sign}{num}/{q2}"
    if 1e-3 <= a < 1e4:
        return f"{v:.4g}"
    mantissa, exp = f"{v:.3e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return rf"{mantissa}\times10^{{{int(exp)}}}"


def _split_square(m):
    """m = p^2 n with n squarefree; returns (p, n)."""
    p, n = 1, m
    k = 2
    while k * k <= n:
        while n % (k * k) == 0:
            n //= k * k
            p *= k
        k += 1
    return p, n


def assignment(key, value):
    """'$W/J = \\sqrt{97}$' for a key and its value."""
    return f"${symbol(key)} = {value_tex(value)}$"


def point_label(values, powers=()):
    """Legend text of a sweep point from its swept ``{key: value}``; '' if none.
    Keys in ``powers`` print their values as powers of ten."""
    return ", ".join(f"${symbol(k)} = {_power_tex(v)}$" if k in powers else assignment(k, v)
                     for k, v in values.items())


def point_labels(values_list):
    """Legend texts of all points, consistent per key: a key whose values are all powers of
    ten spanning two decades or more, reaching 1e4 or 1e-3, prints every value as 10^k
    (t_w = 10^3, 10^4, 10^5, not 1000, 10^4, 10^5; W = 1, 10, 100 stays as it is)."""
    powers = set()
    keys = {k for values in values_list for k in values}
    for key in keys:
        vals = [v.get(key) for v in values_list]
        if (all(_is_power_of_ten(v) for v in vals) and max(vals) >= 100 * min(vals)
                and (max(vals) >= 1e4 or min(vals) <= 1e-3)):
            powers.add(key)
    return [point_label(values, powers) for values in values_list]


def _is_power_of_ten(v):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0 or math.isinf(v):
        return False
    return _close(v, 10.0 ** round(math.log10(v)))


def _power_tex(v):
    k = round(math.log10(v))
    return "1" if k == 0 else ("10" if k == 1 else f"10^{{{k}}}")


def fixed_parameters(configs, realizations=None):
    """Title text: the model's main parameters that are the same at every point.

    Parameters that vary are left to the legend; a constant ratio W/T (the paper's
    disorder scheme) or a constant W^2 + J^2 (its interaction scheme) is named instead.

    Parameters
    ----------
    configs : sequence of RunConfig, one per sweep point
    realizations : int or None
        Appended as 'R realizations' when given.
    """
    first = configs[0]
    kind = first.model.name

    def values(get):
        return [float(get(c)) for c in configs]

    def constant(vals):
        return all(_close(v, vals[0]) for v in vals)

    items = [("model.N", values(lambda c: c.model.N)),
             ("disorder.W", values(lambda c: c.disorder.W)),
             ("disorder.J", values(lambda c: c.disorder.J)),
             ("model.temperature", values(lambda c: c.model.temperature))]
    if kind == "electron":
        items.append(("model.xi", values(lambda c: c.model.xi)))
    parts = [KIND.get(kind, kind)]
    parts += [assignment(k, v[0]) for k, v in items if constant(v)]
    w, j, t = (dict(items)[k] for k in ("disorder.W", "disorder.J", "model.temperature"))
    if not constant(w) and not constant(t) and constant([a / b for a, b in zip(w, t)]):
        parts.append(assignment("W_over_T", w[0] / t[0]))
    if not constant(j) and constant([a * a + b * b for a, b in zip(w, j)]):
        parts.append(assignment("W2_plus_J2", w[0] ** 2 + j[0] ** 2))
    text = ", ".join(parts)
    if realizations is not None:
        text += f", {realizations} realization{'s' if realizations != 1 else ''}"
    return text


def value_error(value, error):
    """Mathtext (without $) 'v \\pm e' with e to 2 significant digits and v to the same
    decimal place; scientific notation outside [1e-3, 1e4)."""
    if not (np.isfinite(value) and np.isfinite(error) and error > 0):
        return value_tex(float(value)) if np.isfinite(value) else r"\mathrm{nan}"
    exp = math.floor(math.log10(abs(value))) if value != 0 else 0
    scale = 10.0 ** exp if (exp >= 4 or exp <= -4) else 1.0
    v, e = value / scale, error / scale
    decimals = max(0, 1 - math.floor(math.log10(e)))
    text = f"{v:.{decimals}f} \\pm {e:.{decimals}f}"
    return text if scale == 1.0 else rf"({text})\times10^{{{exp}}}"
