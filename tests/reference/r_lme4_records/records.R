# Reference values for pathfinder-eval's stepped-wedge LMM on individual records
# (estimators/sw_lmm_records.py). Run from this folder: Rscript records.R   (writes values.csv)
# lme4::lmer (REML) with tight optimiser tolerances; Satterthwaite df from lmerTest::contest,
# Kenward-Roger SE and df from pbkrtest (vcovAdj, Lb_ddf). Data: the seeded simulated trials
# in this folder (make_sim.py).
suppressPackageStartupMessages({
  library(lme4); library(lmerTest); library(pbkrtest)
})
ctrl <- lmerControl(optimizer = "nloptwrap",
                    optCtrl = list(xtol_abs = 1e-14, ftol_abs = 1e-15, xtol_rel = 1e-14,
                                   ftol_rel = 1e-15, maxeval = 100000),
                    check.conv.singular = "ignore")
cross <- read.csv("sim_cross.csv", stringsAsFactors = FALSE)
cohort <- read.csv("sim_cohort.csv", stringsAsFactors = FALSE)
cross$fperiod <- factor(cross$period)
cohort$fperiod <- factor(cohort$period)
# fit name -> data, formula, covariate terms to report besides trt
FITS <- list(
  cross_ne = list(cross, y ~ fperiod + trt + age + sex + (1 | cluster) + (1 | cluster:fperiod),
                  c("age", "sex")),
  cross_hh = list(cross, y ~ fperiod + trt + age + sex + (1 | cluster), c("age", "sex")),
  cohort_ne = list(cohort, y ~ fperiod + trt + sex + score + (1 | cluster) +
                     (1 | cluster:fperiod) + (1 | id), c("sex", "score")),
  cohort_hh = list(cohort, y ~ fperiod + trt + sex + score + (1 | cluster) + (1 | id),
                   c("sex", "score"))
)
GROUPS <- c(cluster = "tau2", "cluster:fperiod" = "gamma2", id = "psi2")
out <- data.frame()
add <- function(fit, quantity, value) {
  out <<- rbind(out, data.frame(fit = fit, quantity = quantity, value = sprintf("%.15g", value)))
}
for (name in names(FITS)) {
  f <- FITS[[name]]
  m <- lmer(f[[2]], data = f[[1]], REML = TRUE, control = ctrl)
  vc <- as.data.frame(VarCorr(m))
  for (g in names(GROUPS)) if (g %in% vc$grp) add(name, GROUPS[[g]], vc$vcov[vc$grp == g])
  add(name, "sigma2", sigma(m)^2)
  add(name, "reml_criterion", REMLcrit(m))
  vadj <- vcovAdj(m)
  b <- fixef(m)
  for (term in c("trt", f[[3]])) {
    l <- matrix(as.numeric(names(b) == term), nrow = 1)
    s <- contest(m, l, ddf = "Satterthwaite", joint = FALSE)
    add(name, paste0(term, ":estimate"), s$Estimate)
    add(name, paste0(term, ":std_error"), s[["Std. Error"]])
    add(name, paste0(term, ":df_satterthwaite"), s$df)
    add(name, paste0(term, ":std_error_kr"), sqrt(drop(l %*% vadj %*% t(l))))
    add(name, paste0(term, ":df_kr"), Lb_ddf(l, vcov(m), vadj))
  }
}
write.csv(out, "values.csv", row.names = FALSE, quote = FALSE)
cat(R.version.string, "; lme4", as.character(packageVersion("lme4")),
    "; lmerTest", as.character(packageVersion("lmerTest")),
    "; pbkrtest", as.character(packageVersion("pbkrtest")), "\n")
