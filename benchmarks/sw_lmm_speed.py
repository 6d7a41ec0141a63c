"""Benchmark: stepped-wedge LMMs on 1.1M individual records, beside lme4 and statsmodels.

Run on demand (not a test): python benchmarks/sw_lmm_speed.py [CELL_SIZE]
A nested-exchangeable trial of 20 clusters × 11 periods × CELL_SIZE (default 5,000) records
per cell is simulated (seed 1), then Hussey & Hughes and nested exchangeable models with
categorical periods and an immediate effect are fitted by REML:
- pathfinder-eval: records → cell summaries → exact REML (timed from the records, and the
  REML fit alone), best of REPEATS after a warm-up;
- R lme4::lmer (when `Rscript` is on PATH), timed inside R (data already loaded);
- statsmodels MixedLM (REML, lbfgs), in a subprocess stopped after SM_TIMEOUT seconds.
Ratios are peer / ours (records → fit); then the largest absolute differences from our β̂ and
variance components, and the memory each fit needed above the data already loaded, measured
the way each runtime allows: ours, the peak of what one call allocates (tracemalloc, which
sees NumPy's arrays); statsmodels, its process's peak resident memory at the fit's end less
its resident memory at the fit's start; lme4, R's gc() "max used" during lmer
less the heap in use before it (R's heap only: lme4's C++ allocations are not counted, and
the maxima of its two cell kinds may come from different moments).
"""

from __future__ import annotations

import inspect
import json
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
from measure import best_of, high_water_mib, traced_peak_mib  # benchmarks/ is on the path

from pathfinder_eval.estimators.stepped_wedge.lmm import fit_reml, fixed_effects, summarise_records

CLUSTERS, PERIODS, REPEATS, SM_TIMEOUT = 20, 11, 5, 600
MODELS = {"hussey_hughes": "HH", "nested_exchangeable": "NE"}

R_SCRIPT = r"""
suppressPackageStartupMessages(library(lme4))
d <- read.csv(commandArgs(TRUE)[1])
d$fperiod <- factor(d$period); d$cluster <- factor(d$cluster)
ctrl <- lmerControl(calc.derivs = FALSE)
out <- list()
for (m in c("hussey_hughes", "nested_exchangeable")) {
  f <- if (m == "hussey_hughes") y ~ fperiod + trt + (1 | cluster) else
    y ~ fperiod + trt + (1 | cluster) + (1 | cluster:fperiod)
  before <- sum(gc(reset = TRUE)[, 2L])  # MiB in use (Ncells + Vcells); the peak reset
  t <- system.time(fit <- lmer(f, data = d, REML = TRUE, control = ctrl))[["elapsed"]]
  g <- gc()
  peak <- sum(g[, which(colnames(g) == "max used") + 1L]) - before  # MiB, above the start
  vc <- as.data.frame(VarCorr(fit))
  out[[m]] <- list(seconds = t, peak = peak, trt = unname(fixef(fit)["trt"]),
                   tau2 = vc$vcov[vc$grp == "cluster"], sigma2 = sigma(fit)^2,
                   gamma2 = if (m == "nested_exchangeable") vc$vcov[vc$grp == "cluster:fperiod"]
                            else NA)
}
for (m in names(out)) cat(m, out[[m]]$seconds, out[[m]]$peak, sprintf("%.12g", out[[m]]$trt),
                          sprintf("%.12g", out[[m]]$tau2), sprintf("%.12g", out[[m]]$gamma2),
                          sprintf("%.12g", out[[m]]$sigma2), "\n")
"""

SM_SCRIPT = textwrap.dedent(
    """
    import json, os, sys, time, warnings
    import pandas as pd
    import statsmodels.formula.api as smf
    d = pd.read_parquet(sys.argv[1])
    model = sys.argv[2]
    vc = {"cp": "0 + C(period)"} if model == "nested_exchangeable" else None
    with open("/proc/self/statm") as f:  # resident pages now, not the peak so far
        before = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20  # MiB
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = smf.mixedlm(
            "y ~ C(period) + trt", d, groups="cluster", re_formula="1", vc_formula=vc
        ).fit(
            reml=True, method="lbfgs"
        )
    seconds = time.perf_counter() - start
    raised = high_water_mib() - before  # its own peak: ru_maxrss holds the parent's (measure.py)
    out = {"seconds": seconds, "peak_mib": raised, "trt": float(fit.fe_params["trt"]),
           "tau2": float(fit.cov_re.iloc[0, 0]), "sigma2": float(fit.scale),
           "gamma2": float(fit.vcomp[0]) if vc else None}
    print(json.dumps(out))
    """
)


def simulate(cell_size: int) -> pd.DataFrame:
    """Individual records of a nested-exchangeable trial (ICC 0.05, CAC 0.8, effect 0.2)."""
    rng = np.random.default_rng(1)
    starts = np.repeat(np.arange(1, PERIODS), 2)  # 10 sequences of 2 clusters
    cluster = np.repeat(np.arange(CLUSTERS), PERIODS * cell_size)
    period = np.tile(np.repeat(np.arange(PERIODS), cell_size), CLUSTERS)
    alpha = rng.normal(0, np.sqrt(0.04), CLUSTERS)
    gamma = rng.normal(0, np.sqrt(0.01), (CLUSTERS, PERIODS))
    trt = (period >= starts[cluster]).astype(float)
    y = (
        0.05 * period
        + 0.2 * trt
        + alpha[cluster]
        + gamma[cluster, period]
        + rng.normal(0, np.sqrt(0.95), len(cluster))
    )
    return pd.DataFrame({"cluster": cluster, "period": period, "trt": trt, "y": y})


def ours(records: pd.DataFrame, structure: str):
    cells = summarise_records(
        records["cluster"].to_numpy(),
        records["period"].to_numpy(),
        records["y"].to_numpy(),
        (CLUSTERS, PERIODS),
    )
    start = records[records["trt"] == 1].groupby("cluster")["period"].min()
    starts = start.reindex(range(CLUSTERS)).fillna(PERIODS).to_numpy(int)
    fe = fixed_effects(cells.observed, starts, "immediate")
    return cells, fe, fit_reml(cells, fe.X, structure)


def main(cell_size: int) -> None:
    records = simulate(cell_size)
    print(
        f"{len(records):,} records: {CLUSTERS} clusters × {PERIODS} periods × {cell_size:,} "
        f"per cell; REML, categorical periods, immediate effect (best of {REPEATS})"
    )
    results: dict[str, dict[str, dict]] = {m: {} for m in MODELS}
    for m in MODELS:
        seconds, (cells, fe, fit) = best_of(lambda m=m: ours(records, m), REPEATS)
        fit_only, _ = best_of(lambda m=m, cells=cells, fe=fe: fit_reml(cells, fe.X, m), REPEATS)
        comp = fit.components
        results[m]["pathfinder-eval"] = {
            "seconds": seconds,
            "fit_only": fit_only,
            "trt": float(fit.beta[-1]),
            "tau2": comp["tau2"],
            "gamma2": comp.get("gamma2"),
            "sigma2": comp["sigma2"],
            "converged": fit.converged,
            "peak_mib": traced_peak_mib(lambda m=m: ours(records, m)),
        }
    with tempfile.TemporaryDirectory() as tmp:
        if shutil.which("Rscript"):
            csv = Path(tmp) / "records.csv"
            records.to_csv(csv, index=False)
            script = Path(tmp) / "lme4.R"
            script.write_text(R_SCRIPT)
            done = subprocess.run(
                ["Rscript", str(script), str(csv)], capture_output=True, text=True
            )
            if done.returncode:  # R without lme4, say: the comparison goes on without it
                last = (done.stderr.strip().splitlines() or [""])[-1]
                print(f"lme4 failed (exit status {done.returncode}): {last}")
            for line in done.stdout.strip().splitlines() if done.returncode == 0 else ():
                m, sec, peak, trt, tau2, gamma2, sigma2 = line.split()
                results[m]["lme4"] = {
                    "seconds": float(sec),
                    "peak_mib": float(peak),  # R's Mb are 2^20 bytes
                    "trt": float(trt),
                    "tau2": float(tau2),
                    "gamma2": None if gamma2 == "NA" else float(gamma2),
                    "sigma2": float(sigma2),
                }
        else:
            print("Rscript not found: lme4 skipped")
        parquet = Path(tmp) / "records.parquet"
        records.to_parquet(parquet)
        script = Path(tmp) / "sm.py"
        script.write_text(inspect.getsource(high_water_mib) + SM_SCRIPT)
        for m in MODELS:
            try:
                out = subprocess.run(
                    [sys.executable, str(script), str(parquet), m],
                    capture_output=True,
                    text=True,
                    timeout=SM_TIMEOUT,
                    check=True,
                ).stdout
                results[m]["statsmodels"] = json.loads(out.strip().splitlines()[-1])
            except subprocess.TimeoutExpired:
                results[m]["statsmodels"] = {"seconds": float("inf"), "timeout": True}
            except subprocess.CalledProcessError as exc:
                last = (exc.stderr.strip().splitlines() or [""])[-1]
                results[m]["statsmodels"] = {"seconds": float("inf"), "failed": last}
    print(
        f"{'model':5} {'package':16} {'seconds':>9} {'ratio':>8} {'effect':>14} "
        f"{'max |Δβ̂|':>10} {'max |Δvar|':>11} {'peak MiB':>9}"
    )
    for m, label in MODELS.items():
        base = results[m]["pathfinder-eval"]
        for name, r in results[m].items():
            if r.get("timeout"):
                print(f"{label:5} {name:16} {'>' + str(SM_TIMEOUT):>9} {'—':>8}  (stopped)")
                continue
            if "failed" in r:
                print(f"{label:5} {name:16} {'—':>9} {'—':>8}  (failed: {r['failed']})")
                continue
            keys = [k for k in ("tau2", "gamma2", "sigma2") if base[k] is not None]
            dvar = max(abs(r[k] - base[k]) for k in keys)
            print(
                f"{label:5} {name:16} {r['seconds']:9.3f} {r['seconds'] / base['seconds']:8.1f} "
                f"{r['trt']:14.10f} {abs(r['trt'] - base['trt']):10.1e} {dvar:11.1e} "
                f"{r['peak_mib']:9.1f}"
            )
        print(f"{'':5} (pathfinder-eval REML fit alone on the cells: {base['fit_only']:.4f} s)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5000)
