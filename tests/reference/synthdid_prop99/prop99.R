# Reference values for pathfinder-eval's synthetic DiD, synthetic control and DiD estimators:
# Arkhangelsky et al. (2021, AER) Table 1 on California Proposition 99, as the R package
# synthdid (github synth-inference/synthdid, commit 70c1ce3, version 0.0.9) computes them.
# Run:  Rscript prop99.R /path/to/california_prop99.csv   (writes values.csv and weights.csv)
suppressPackageStartupMessages(library(synthdid))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1])
d$treated <- as.integer(d$treated)
setup <- panel.matrices(d, unit = "State", time = "Year", outcome = "PacksPerCapita",
                        treatment = "treated")
est <- list(sdid = synthdid_estimate(setup$Y, setup$N0, setup$T0),
            sc = sc_estimate(setup$Y, setup$N0, setup$T0),
            did = did_estimate(setup$Y, setup$N0, setup$T0))
set.seed(12345)
placebo <- sapply(est, function(e) sqrt(vcov(e, method = "placebo", replications = 1000)))
vals <- data.frame(estimator = names(est), estimate = sprintf("%.12f", sapply(est, c)),
                   placebo_se_1000 = sprintf("%.6f", placebo),
                   noise_level = sprintf("%.12f", sd(apply(setup$Y[1:setup$N0, 1:setup$T0], 1, diff))))
write.csv(vals, "values.csv", row.names = FALSE, quote = FALSE)
w <- attr(est$sdid, "weights")
wsc <- attr(est$sc, "weights")
units <- rownames(setup$Y)[1:setup$N0]
times <- colnames(setup$Y)[1:setup$T0]
weights <- rbind(
  data.frame(estimator = "sdid", kind = "omega", name = units, weight = sprintf("%.12f", w$omega)),
  data.frame(estimator = "sdid", kind = "lambda", name = times, weight = sprintf("%.12f", w$lambda)),
  data.frame(estimator = "sc", kind = "omega", name = units, weight = sprintf("%.12f", wsc$omega)))
write.csv(weights, "weights.csv", row.names = FALSE, quote = FALSE)
curve <- synthdid_effect_curve(est$sdid)
write.csv(data.frame(year = colnames(setup$Y)[(setup$T0 + 1):ncol(setup$Y)],
                     effect = sprintf("%.12f", curve)), "effect_curve.csv",
          row.names = FALSE, quote = FALSE)
cat(R.version.string, "; synthdid", as.character(packageVersion("synthdid")), "\n")
# Two treated units (California and Nevada from 1989), for the jackknife (needs N1 > 1).
d2 <- d
d2$treated[d2$State == "Nevada" & d2$Year >= 1989] <- 1L
setup2 <- panel.matrices(d2, unit = "State", time = "Year", outcome = "PacksPerCapita",
                         treatment = "treated")
est2 <- synthdid_estimate(setup2$Y, setup2$N0, setup2$T0)
write.csv(data.frame(estimate = sprintf("%.12f", c(est2)),
                     jackknife_se = sprintf("%.12f", sqrt(vcov(est2, method = "jackknife")))),
          "two_treated.csv", row.names = FALSE, quote = FALSE)
