# Reference values for pathfinder-eval's stepped-wedge linear mixed models.
# Run from this folder: Rscript stepped_wedge.R   (writes values.csv)
# Hussey & Hughes and nested exchangeable: lme4::lmer (REML) with tight optimiser tolerances;
# Satterthwaite df from lmerTest::contest, Kenward-Roger SE and df from pbkrtest (vcovAdj,
# Lb_ddf). Exponential decay: glmmTMB with ar1(0 + period | cluster), REML = TRUE.
# Datasets: geeCRT and steppedwedge examples read in place from ../shared (never copied) and the
# seeded simulated trials in this folder (make_sim.py).
suppressPackageStartupMessages({
  library(lme4); library(lmerTest); library(pbkrtest); library(glmmTMB)
})
shared <- file.path("..", "..", "..", "..", "shared", "data", "reference", "stepped_wedge")
read <- function(file, cluster, trt, y) {
  d <- read.csv(file, stringsAsFactors = FALSE)
  data.frame(cluster = as.character(d[[cluster]]), period = d$period, trt = d[[trt]], y = d[[y]])
}
datasets <- list(
  geecrt_small = read(file.path(shared, "geeCRT_sampleSWCRTSmall.csv"), "id", "treatment", "y_con"),
  geecrt_large = read(file.path(shared, "geeCRT_sampleSWCRTLarge.csv"), "id", "treatment", "y_con"),
  sw_example = read(file.path(shared, "steppedwedge_sw_data_example.csv"), "cluster", "trt",
                    "outcome_cont"),
  sim_ne = read("sim_ne.csv", "cluster", "trt", "y"),
  sim_incomplete = read("sim_incomplete.csv", "cluster", "trt", "y"),
  sim_decay = read("sim_decay.csv", "cluster", "trt", "y")
)
ctrl <- lmerControl(optimizer = "nloptwrap",
                    optCtrl = list(xtol_abs = 1e-14, ftol_abs = 1e-15, xtol_rel = 1e-14,
                                   ftol_rel = 1e-15, maxeval = 100000),
                    check.conv.singular = "ignore")
out <- data.frame()
add <- function(dataset, model, shape, quantity, value) {
  out <<- rbind(out, data.frame(dataset = dataset, model = model, shape = shape,
                                quantity = quantity, value = sprintf("%.15g", value)))
}
exposure <- function(d) {
  start <- tapply(ifelse(d$trt == 1, d$period, Inf), d$cluster, min)
  e <- d$period - start[d$cluster] + 1
  ifelse(d$trt == 1, e, 0)
}
# Natural cubic spline basis as the steppedwedge package builds it (n knots equally spaced on
# [lo, hi], boundary knots included, intercept = TRUE).
ncs <- function(x, lo, hi, n = 4) {
  k <- seq(lo, hi, length.out = n)
  as.matrix(splines::ns(x, knots = k[2:(n - 1)], intercept = TRUE, Boundary.knots = k[c(1, n)]))
}
contrasts_of <- function(m, shape, d) {
  b <- fixef(m); k <- length(b)
  if (shape %in% c("it", "it_linear", "it_pspline")) {
    return(list(effect = as.numeric(names(b) == "trt")))
  }
  if (shape == "ncs") {  # effect curve B %*% beta at exposure times 1..S; TATE its mean
    s <- max(d$e); cols <- grep("^b[0-9]", names(b)); B <- ncs(1:s, 0, s)
    L <- list(tate = replace(numeric(k), cols, colMeans(B)))
    for (e in 1:s) L[[paste0("e", e)]] <- replace(numeric(k), cols, B[e, ])
    return(L)
  }
  cols <- grep("^fe", names(b))
  L <- list(tate = as.numeric(seq_len(k) %in% cols) / length(cols))
  for (j in cols) L[[sub("^fe", "e", names(b)[j])]] <- as.numeric(seq_len(k) == j)
  L
}
# Right-hand sides: immediate effect (it), exposure-time indicators (eti), spline in exposure
# time (ncs), and the immediate effect with a linear or spline secular trend.
RHS <- c(it = "fperiod + trt", eti = "fperiod + fe", ncs = "fperiod + b1 + b2 + b3 + b4",
         it_linear = "period + trt", it_pspline = "0 + j1 + j2 + j3 + j4 + trt")
EXTRA <- list(eti = c("sw_example", "sim_ne"), ncs = c("sw_example", "sim_ne"),
              it_linear = c("sw_example", "geecrt_large"),
              it_pspline = c("sw_example", "geecrt_large"))
for (name in names(datasets)) {
  d <- datasets[[name]]
  d$fperiod <- factor(d$period)
  d$e <- exposure(d)
  d$fe <- factor(d$e)
  B <- ncs(d$e, 0, max(d$e)) * d$trt
  for (j in 1:4) d[[paste0("b", j)]] <- B[, j]
  J <- ncs(d$period, min(d$period), max(d$period))
  for (j in 1:4) d[[paste0("j", j)]] <- J[, j]
  for (model in c("hh", "ne")) {
    for (shape in names(RHS)) {
      if (shape != "it" && !(name %in% EXTRA[[shape]])) next
      rhs <- RHS[[shape]]
      re <- if (model == "hh") "(1 | cluster)" else "(1 | cluster) + (1 | cluster:fperiod)"
      m <- lmer(as.formula(paste("y ~", rhs, "+", re)), data = d, REML = TRUE, control = ctrl)
      vc <- as.data.frame(VarCorr(m))
      add(name, model, shape, "tau2", vc$vcov[vc$grp == "cluster"])
      if (model == "ne") add(name, model, shape, "gamma2", vc$vcov[vc$grp == "cluster:fperiod"])
      add(name, model, shape, "sigma2", sigma(m)^2)
      add(name, model, shape, "reml_criterion", REMLcrit(m))
      vadj <- vcovAdj(m)
      for (term in names(L <- contrasts_of(m, shape, d))) {
        l <- matrix(L[[term]], nrow = 1)
        s <- contest(m, l, ddf = "Satterthwaite", joint = FALSE)
        add(name, model, shape, paste0(term, ":estimate"), s$Estimate)
        add(name, model, shape, paste0(term, ":std_error"), s[["Std. Error"]])
        add(name, model, shape, paste0(term, ":df_satterthwaite"), s$df)
        add(name, model, shape, paste0(term, ":std_error_kr"), sqrt(drop(l %*% vadj %*% t(l))))
        add(name, model, shape, paste0(term, ":df_kr"), Lb_ddf(l, vcov(m), vadj))
      }
    }
  }
  m <- glmmTMB(y ~ fperiod + trt + ar1(0 + fperiod | cluster), data = d, REML = TRUE,
               control = glmmTMBControl(optCtrl = list(iter.max = 10000, eval.max = 10000,
                                                       rel.tol = 1e-12)))
  tau2 <- attr(VarCorr(m)$cond$cluster, "stddev")[[1]]^2
  r <- attr(VarCorr(m)$cond$cluster, "correlation")[1, 2]
  add(name, "ed", "it", "tau2", tau2)
  add(name, "ed", "it", "decay", r)
  add(name, "ed", "it", "sigma2", sigma(m)^2)
  add(name, "ed", "it", "effect:estimate", fixef(m)$cond[["trt"]])
  # glmmTMB's REML vcov adds variance-parameter uncertainty; the model-based GLS covariance
  # (X'V^-1 X)^-1 at its estimates is the comparable quantity.
  X <- model.matrix(~ fperiod + trt, d)
  V <- outer(d$cluster, d$cluster, "==") * tau2 * r^abs(outer(d$period, d$period, "-")) +
    diag(sigma(m)^2, nrow(d))
  add(name, "ed", "it", "effect:std_error",
      sqrt(solve(crossprod(X, solve(V, X)))["trt", "trt"]))
}
write.csv(out, "values.csv", row.names = FALSE, quote = FALSE)
cat(R.version.string, "; lme4", as.character(packageVersion("lme4")),
    "; lmerTest", as.character(packageVersion("lmerTest")),
    "; pbkrtest", as.character(packageVersion("pbkrtest")),
    "; glmmTMB", as.character(packageVersion("glmmTMB")), "\n")
