# Reference values for pathfinder-eval's analytic power with a Kenward-Roger analysis
# (power/expected_df.py): the KR df and adjusted variance of the immediate effect depend only on
# the design and the variance parameters, not on the outcomes. Each trial below is simulated
# (seeded), fitted by lme4::lmer (REML), and pbkrtest gives the KR df (KRmodcomp against the model
# without the effect) and the adjusted variance (vcovAdj) at the fitted parameters; the test
# evaluates expected_df at those same parameters. Balanced: every cluster-period has `m` people.
# Run from this folder: Rscript kr_design_df.R   (writes values.csv)
suppressPackageStartupMessages({ library(lme4); library(pbkrtest) })
ctrl <- lmerControl(optimizer = "nloptwrap",
                    optCtrl = list(xtol_abs = 1e-14, ftol_abs = 1e-15, xtol_rel = 1e-14,
                                   ftol_rel = 1e-15, maxeval = 100000),
                    check.conv.singular = "ignore")
trial <- function(seed, starts, periods, m, tau, gamma, sigma) {
  set.seed(seed)
  k <- length(starts)
  d <- expand.grid(person = seq_len(m), period = seq_len(periods), cluster = seq_len(k))
  d$trt <- as.integer(d$period >= starts[d$cluster])
  u <- rnorm(k, 0, tau)
  v <- matrix(rnorm(k * periods, 0, gamma), k, periods)
  d$y <- 0.1 * d$period + 0.3 * d$trt + u[d$cluster] + v[cbind(d$cluster, d$period)] +
    rnorm(nrow(d), 0, sigma)
  d$cluster <- factor(d$cluster)
  d$fperiod <- factor(d$period)
  d
}
cases <- list(
  list(name = "twelve_four_steps", seed = 11, starts = rep(2:5, each = 3), periods = 5, m = 30,
       tau = sqrt(0.05), gamma = 0.1, sigma = sqrt(0.95)),
  list(name = "eight_steps_small_cells", seed = 12, starts = rep(2:5, each = 2), periods = 5,
       m = 8, tau = 0.4, gamma = 0.25, sigma = 1)
)
out <- data.frame()
for (cs in cases) {
  d <- trial(cs$seed, cs$starts, cs$periods, cs$m, cs$tau, cs$gamma, cs$sigma)
  for (model in c("hussey_hughes", "nested_exchangeable")) {
    re <- if (model == "hussey_hughes") "(1 | cluster)" else "(1 | cluster) + (1 | cluster:fperiod)"
    big <- lmer(as.formula(paste("y ~ 0 + fperiod + trt +", re)), data = d, REML = TRUE,
                control = ctrl)
    small <- lmer(as.formula(paste("y ~ 0 + fperiod +", re)), data = d, REML = TRUE,
                  control = ctrl)
    kr <- KRmodcomp(big, small)$test["Ftest", ]
    vc <- as.data.frame(VarCorr(big))
    tau2 <- vc$vcov[vc$grp == "cluster"]
    gamma2 <- if (model == "nested_exchangeable") vc$vcov[vc$grp == "cluster:fperiod"] else 0
    sigma2 <- vc$vcov[vc$grp == "Residual"]
    adj <- as.matrix(vcovAdj(big))["trt", "trt"]
    plain <- as.matrix(vcov(big))["trt", "trt"]
    out <- rbind(out, data.frame(case = cs$name, model = model,
                                 starts = paste(cs$starts, collapse = " "), periods = cs$periods,
                                 m = cs$m, tau2 = tau2, gamma2 = gamma2, sigma2 = sigma2,
                                 df = kr$ddf, inflation = adj / plain))
  }
}
write.csv(out, "values.csv", row.names = FALSE)
print(out, digits = 12)
