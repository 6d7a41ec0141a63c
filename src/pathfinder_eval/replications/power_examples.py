"""Published stepped-wedge power calculations (swCRTdesign, SteppedPower)."""

from __future__ import annotations

from pathlib import Path

from pathfinder_eval.power.analytic import VarianceModel, gls_precision, power, stepped_wedge
from pathfinder_eval.replications.registry import ApiExample, Entry, Published, Reproduced, register

SWCRT = "R swCRTdesign, swPwr help page, Example 1"
STEPPED = "R SteppedPower (Hussey & Hughes 2007 setting), glsPower"
TEN_DIGITS = "published to 10 significant digits: half a unit in the last digit"


def _binomial(p0: float, p1: float, tau: float) -> VarianceModel:
    pbar = (p0 + p1) / 2
    return VarianceModel(tau2=tau**2, sigma2=pbar * (1 - pbar))


def compute(_: Path) -> dict[str, Reproduced]:
    design = stepped_wedge([6, 6, 6, 6])
    v1 = gls_precision(design, _binomial(0.05, 0.035, 0.01), 120).variance
    v2 = gls_precision(design, _binomial(0.05, 0.032, 0.025), 100).variance
    return {
        "swCRTdesign Example 1 power": Reproduced(power(0.015, v1)),
        "SteppedPower HH var(θ̂)": Reproduced(v2),
        "SteppedPower HH power": Reproduced(power(0.018, v2)),
    }


register(
    Entry(
        name="hussey_hughes_power",
        title="Analytic power of a stepped-wedge trial (Hussey & Hughes model)",
        citation="Hussey & Hughes (2007), Contemporary Clinical Trials 28:182–191",
        data="",
        bundled=True,
        published=(
            Published("swCRTdesign Example 1 power", 0.7861895925, 5e-11, TEN_DIGITS, SWCRT),
            Published("SteppedPower HH var(θ̂)", 4.065847294e-05, 5e-15, TEN_DIGITS, STEPPED),
            Published("SteppedPower HH power", 0.8059171845, 5e-11, TEN_DIGITS, STEPPED),
        ),
        compute=compute,
        lesson=(
            "Design: 24 clusters in 4 sequences of 6 cross from control to intervention one "
            "sequence per period over 5 periods; a binary outcome with a random cluster effect.",
            "Method: the treatment effect is estimated from cluster-period means by generalised "
            "least squares with a fixed effect for each period; its variance comes from the GLS "
            "information matrix, and power from a two-sided z test using both rejection tails.",
            "Why the numbers match: on the risk-difference scale the individual variance is "
            "p̄(1 − p̄) with p̄ the mean of the two risks, exactly as both packages define it; "
            "the rest is the same matrix algebra.",
        ),
        api=ApiExample(
            "value = pe.power([6, 6, 6, 6], 0.018, cell_size=100, tau2=0.025**2,\n"
            "                 sigma2=0.041 * 0.959)",
            "SteppedPower HH power",
        ),
    )
)
