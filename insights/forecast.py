"""Period-end spend forecast with an uncertainty band that reflects the observed variance.

Model. The period is cut into buckets: days of a monthly budget, hours of a daily one.
The complete buckets observed so far in this period, x_1..x_n (zero-spend buckets
included), are treated as draws from the scope's per-bucket spend distribution; s is their
sample standard deviation. The mean per bucket m is the period's pace so far, spend so far
/ elapsed buckets (the complete buckets plus the current partial one: a scope that started
spending today is not forecast at zero). The rest of the period is R buckets (fractional:
the remainder of the current bucket counts). Its spend S_R is predicted as

    mean(S_R) = R * m
    sd(S_R)   = s * sqrt(R + R^2 / n)

R * s^2 is the day-to-day noise of R independent buckets; R^2 * s^2 / n is the uncertainty
of m itself, estimated from only n buckets (early in the month it dominates: the band is
wide on day 3 and narrows as days accumulate). The percentiles use Student's t with n - 1
degrees of freedom (small n: heavier tails than the normal), its quantile from the
Cornish-Fisher expansion (Abramowitz & Stegun 26.7.5; within 0.3 % of the exact quantile for
n - 1 >= 2 at P10/P90). Month-end spend = spend so far + S_R, with S_R clipped at 0 (spend
never goes down), so P_low >= spend so far.

Consequences worth knowing: two scopes with the same mean daily spend get the same P50 but
the noisier one gets the wider band (its s is larger); a steady trend (spend growing every
day) shows up as variance, not as a higher P50 - the burn-rate alerts are the tool for
acceleration, the forecast answers "where do we land at the current average pace".

With fewer than `min_buckets` complete buckets no band is given (s would be meaningless):
P50 is then the linear pace (spend so far / elapsed x period) and the band is None.

Money stays Decimal: the t quantile is a float multiplier (not money), converted to
Decimal with 6 decimals; results are quantized to 1e-12 USD like every stored cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from statistics import NormalDist

USD_QUANTUM = Decimal("1e-12")


@dataclass(frozen=True)
class Forecast:
    p_low: Decimal | None  # None: not enough complete buckets for a band
    p50: Decimal | None  # None: nothing elapsed yet
    p_high: Decimal | None
    low_pct: int
    high_pct: int
    buckets: int  # complete buckets observed
    mean_per_bucket: Decimal | None
    sd_per_bucket: Decimal | None

    @property
    def has_band(self) -> bool:
        return self.p_low is not None


def t_quantile(p: float, dof: int) -> float:
    """Quantile of Student's t with `dof` degrees of freedom (Cornish-Fisher expansion)."""
    if not 0 < p < 1:
        raise ValueError("p must be in (0, 1)")
    if dof < 1:
        raise ValueError("dof must be >= 1")
    z = NormalDist().inv_cdf(p)
    v = float(dof)
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / v + g2 / v**2 + g3 / v**3 + g4 / v**4


def _q(value: Decimal) -> Decimal:
    return value.quantize(USD_QUANTUM, rounding=ROUND_HALF_EVEN)


def forecast_period_end(*, spend_so_far: Decimal, observed: Sequence[Decimal], elapsed_buckets: Decimal,
                        remaining_buckets: Decimal, low_pct: int = 10, high_pct: int = 90,
                        min_buckets: int = 3) -> Forecast:
    """Forecast the period's total spend.

    spend_so_far       spend in [period start, as_of), including the current partial bucket
    observed           spend of each complete bucket of the period so far (zeros included)
    elapsed_buckets    (as_of - period start) / bucket length
    remaining_buckets  (period end - as_of) / bucket length
    """
    if remaining_buckets < 0 or elapsed_buckets < 0:
        raise ValueError("elapsed and remaining buckets must be >= 0")
    n = len(observed)
    with localcontext() as ctx:
        ctx.prec = 50
        if n < max(min_buckets, 2):
            if elapsed_buckets == 0:
                p50 = None if remaining_buckets else _q(spend_so_far)
            else:
                p50 = _q(spend_so_far * (elapsed_buckets + remaining_buckets) / elapsed_buckets)
            return Forecast(None, p50, None, low_pct, high_pct, n, None, None)
        observed_mean = sum(observed, Decimal(0)) / n
        var = sum(((x - observed_mean) ** 2 for x in observed), Decimal(0)) / (n - 1)
        mean = spend_so_far / elapsed_buckets if elapsed_buckets else observed_mean
        sd = var.sqrt()
        r = remaining_buckets
        sd_rest = sd * (r + r * r / n).sqrt()
        mean_rest = r * mean

        def at(pct: int) -> Decimal:
            t = Decimal(repr(round(t_quantile(pct / 100, n - 1), 6)))
            return _q(spend_so_far + max(Decimal(0), mean_rest + t * sd_rest))

        return Forecast(at(low_pct), _q(spend_so_far + max(Decimal(0), mean_rest)), at(high_pct), low_pct, high_pct,
                        n, _q(mean), _q(sd))
