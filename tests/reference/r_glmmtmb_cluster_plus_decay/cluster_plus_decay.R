# Reference values for pathfinder-eval's cluster_plus_decay model (a cluster random intercept plus
# AR(1) cluster-period effects: Sigma_jl = tau2 + gamma2 * r^|j - l|), by glmmTMB:
#   (1 | cluster) + ar1(0 + fperiod | cluster), categorical period effects, immediate effect.
# Linear mixed model on individuals by REML (REML = TRUE); binomial GLMM on cell counts by
# maximum likelihood with the Laplace approximation. Run from this folder:
#   Rscript cluster_plus_decay.R   (writes values.csv)
# Datasets: the seeded trials in this folder (make_sim.py) and geeCRT's large sample trial
# (y_con), read in place from ../shared (never copied).
suppressPackageStartupMessages(library(glmmTMB))
shared <- file.path("..", "..", "..", "..", "shared", "data", "reference", "stepped_wedge")
ctrl <- glmmTMBControl(optCtrl = list(iter.max = 10000, eval.max = 10000, rel.tol = 1e-10))
out <- data.frame()
add <- function(dataset, model, quantity, value) {
  out <<- rbind(out, data.frame(dataset = dataset, model = model, quantity = quantity,
                                value = sprintf("%.15g", value)))
}
components <- function(m) {
  vc <- VarCorr(m)$cond
  list(tau2 = attr(vc$cluster, "stddev")[[1]]^2,
       gamma2 = attr(vc$cluster.1, "stddev")[[1]]^2,
       decay = attr(vc$cluster.1, "correlation")[1, 2])
}
gee <- read.csv(file.path(shared, "geeCRT_sampleSWCRTLarge.csv"))
lmm_data <- list(
  sim_gauss = read.csv("sim_gauss.csv"),
  geecrt_large = data.frame(cluster = sprintf("k%02d", gee$id), period = gee$period,
                            trt = gee$treatment, y = gee$y_con)
)
for (name in names(lmm_data)) {
  d <- lmm_data[[name]]
  d <- d[order(d$cluster, d$period), ]
  d$fperiod <- factor(d$period)
  m <- glmmTMB(y ~ 0 + factor(period) + trt + (1 | cluster) + ar1(0 + fperiod | cluster),
               data = d, REML = TRUE, control = ctrl)
  comp <- components(m)
  sigma2 <- sigma(m)^2
  for (k in names(comp)) add(name, "lmm", k, comp[[k]])
  add(name, "lmm", "sigma2", sigma2)
  add(name, "lmm", "reml_criterion", -2 * as.numeric(logLik(m)))
  add(name, "lmm", "converged", as.numeric(m$fit$convergence == 0 && m$sdr$pdHess))
  b <- fixef(m)$cond
  # the GLS (X'V^-1 X)^-1 at glmmTMB's variance estimates (glmmTMB's REML vcov of the fixed
  # effects treats them as random and adds variance-parameter uncertainty: another quantity)
  X <- model.matrix(~ 0 + factor(period) + trt, data = d)
  T <- length(unique(d$period))
  lag <- abs(outer(seq_len(T), seq_len(T), "-"))
  S <- comp$tau2 + comp$gamma2 * comp$decay^lag
  info <- matrix(0, ncol(X), ncol(X))
  for (cl in unique(d$cluster)) {
    rows <- d$cluster == cl
    p <- d$period[rows]
    V <- S[p, p] + sigma2 * diag(sum(rows))
    info <- info + t(X[rows, ]) %*% solve(V, X[rows, ])
  }
  se <- sqrt(diag(solve(info)))
  add(name, "lmm", "trt:estimate", b[["trt"]])
  add(name, "lmm", "trt:gls_se", se[[length(se)]])
  for (k in seq_along(b)) add(name, "lmm", sprintf("beta%d", k - 1), b[[k]])
}
cells <- read.csv("sim_binom.csv")
cells$fperiod <- factor(cells$period)
m <- glmmTMB(cbind(events, n - events) ~ 0 + factor(period) + trt + (1 | cluster) +
               ar1(0 + fperiod | cluster), data = cells, family = binomial, control = ctrl)
comp <- components(m)
for (k in names(comp)) add("sim_binom", "glmm", k, comp[[k]])
add("sim_binom", "glmm", "loglik", as.numeric(logLik(m)))
add("sim_binom", "glmm", "converged", as.numeric(m$fit$convergence == 0 && m$sdr$pdHess))
b <- fixef(m)$cond
v <- vcov(m)$cond
add("sim_binom", "glmm", "trt:estimate", b[["trt"]])
add("sim_binom", "glmm", "trt:std_error", sqrt(v["trt", "trt"]))
for (k in seq_along(b)) add("sim_binom", "glmm", sprintf("beta%d", k - 1), b[[k]])
write.csv(out, "values.csv", row.names = FALSE, quote = FALSE)
cat(sprintf("glmmTMB %s, TMB %s, %s\n", packageVersion("glmmTMB"), packageVersion("TMB"),
            R.version.string))
