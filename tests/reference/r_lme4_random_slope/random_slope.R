# Reference values for pathfinder-eval's random_slope LMM: nested exchangeable plus each
# cluster's own intervention effect, correlated with its intercept,
#   lmer(y ~ 0 + factor(period) + trt + (1 + trt | cluster) + (1 | cluster:period), REML)
# with the Kenward-Roger SE and df (pbkrtest::vcovAdj, Lb_ddf) and the Satterthwaite df
# (lmerTest::contest) of the treatment effect. Run from this folder:
#   Rscript random_slope.R   (writes values.csv)
# Datasets: the seeded trials in this folder (make_sim.py) and ../r_lme4_stepped_wedge's
# sim_incomplete.csv (no random slope in its truth: the correlation is estimated at -1).
suppressPackageStartupMessages({ library(lme4); library(lmerTest); library(pbkrtest) })
ctrl <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e6),
                    check.conv.singular = "ignore")
out <- data.frame()
add <- function(dataset, quantity, value) {
  out <<- rbind(out, data.frame(dataset = dataset, quantity = quantity,
                                value = sprintf("%.15g", value)))
}
files <- c(sim_slope = "sim_slope.csv", sim_slope_small = "sim_slope_small.csv",
           sim_incomplete = file.path("..", "r_lme4_stepped_wedge", "sim_incomplete.csv"))
for (name in names(files)) {
  d <- read.csv(files[[name]])
  d$cluster <- factor(d$cluster)
  m <- lmer(y ~ 0 + factor(period) + trt + (1 + trt | cluster) + (1 | cluster:period),
            data = d, REML = TRUE, control = ctrl)
  vc <- as.data.frame(VarCorr(m))
  get <- function(grp, v1, v2 = NA) {
    row <- vc$grp == grp & vc$var1 %in% v1 & (is.na(v2) & is.na(vc$var2) | vc$var2 %in% v2)
    vc$vcov[row]
  }
  add(name, "tau2", get("cluster", "(Intercept)"))
  add(name, "tau_slope_cov", get("cluster", "(Intercept)", "trt"))
  add(name, "slope2", get("cluster", "trt"))
  add(name, "gamma2", get("cluster:period", "(Intercept)"))
  add(name, "sigma2", sigma(m)^2)
  add(name, "reml_criterion", REMLcrit(m))
  add(name, "singular", as.numeric(isSingular(m)))
  add(name, "correlation", attr(VarCorr(m)$cluster, "correlation")[1, 2])
  b <- fixef(m)
  L <- matrix(as.numeric(names(b) == "trt"), nrow = 1)
  add(name, "trt:estimate", b[["trt"]])
  add(name, "trt:model_se", sqrt(vcov(m)["trt", "trt"]))
  kr <- vcovAdj(m)
  add(name, "trt:kr_se", sqrt((L %*% kr %*% t(L))[1, 1]))
  add(name, "trt:kr_df", Lb_ddf(L, vcov(m), kr))
  add(name, "trt:satterthwaite_df", contest(as(m, "lmerModLmerTest"), L, ddf = "Satterthwaite")$DenDF)
}
write.csv(out, "values.csv", row.names = FALSE, quote = FALSE)
cat(sprintf("lme4 %s, lmerTest %s, pbkrtest %s, %s\n", packageVersion("lme4"),
            packageVersion("lmerTest"), packageVersion("pbkrtest"), R.version.string))
