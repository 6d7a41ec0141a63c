# Reference values for pathfinder-eval's stepped-wedge GLMMs on cluster-period counts.
# Run from this folder: Rscript glmm.R   (writes values.csv)
# Binomial (logit, cbind(events, n - events)) and Poisson (log, offset(log(n))) models with
# categorical period effects; Hussey & Hughes (1 | cluster) by lme4::glmer with the Laplace
# approximation (nAGQ = 1) and adaptive Gauss-Hermite quadrature (nAGQ = 10); nested
# exchangeable (1 | cluster) + (1 | cluster:fperiod) by glmer (Laplace); exponential decay
# ar1(0 + fperiod | cluster) by glmmTMB (Laplace). Datasets: the steppedwedge binomial example
# and geeCRT's large sample (y_bin aggregated to cells), read in place from ../shared (never
# copied), and the seeded simulated trials in this folder (make_sim.py). Every glmer Laplace fit
# is repeated with glmmTMB (quantities prefixed or suffixed tmb).
suppressPackageStartupMessages({ library(lme4); library(glmmTMB) })
shared <- file.path("..", "..", "..", "..", "shared", "data", "reference", "stepped_wedge")
cells <- function(d) {
  d$cluster <- as.character(d$cluster)
  d[order(d$cluster, d$period), c("cluster", "period", "trt", "events", "n")]
}
sw <- read.csv(file.path(shared, "steppedwedge_sw_data_example_binom.csv"))
gee <- read.csv(file.path(shared, "geeCRT_sampleSWCRTLarge.csv"))
gee <- aggregate(cbind(events = y_bin, n = 1, trt = treatment) ~ id + period, data = gee, FUN = sum)
gee$trt <- as.integer(gee$trt > 0)
datasets <- list(
  sw_binom = cells(data.frame(cluster = sw$cluster, period = sw$period, trt = sw$trt,
                              events = sw$numerator, n = sw$denominator)),
  geecrt_bin = cells(data.frame(cluster = gee$id, period = gee$period, trt = gee$trt,
                                events = gee$events, n = gee$n)),
  sim_binom = cells(read.csv("sim_binom.csv")),
  sim_decay = cells(read.csv("sim_decay.csv")),
  sim_pois = cells(read.csv("sim_pois.csv")),
  sim_overflow = cells(read.csv("sim_overflow.csv")),
  sim_zero_clusters = cells(read.csv("sim_zero_clusters.csv"))
)
ctrl <- glmerControl(optimizer = "bobyqa", tolPwrss = 1e-10,
                     optCtrl = list(maxfun = 1e5, rhoend = 1e-10))
tmbctrl <- glmmTMBControl(optCtrl = list(iter.max = 10000, eval.max = 10000, rel.tol = 1e-10))
out <- data.frame()
add <- function(fit, quantity, value) {
  out <<- rbind(out, data.frame(dataset = fit$dataset, family = fit$family, model = fit$model,
                                shape = fit$shape, nagq = fit$nagq, quantity = quantity,
                                value = sprintf("%.15g", value)))
}
exposure <- function(d) {
  start <- tapply(ifelse(d$trt == 1, d$period, Inf), d$cluster, min)
  ifelse(d$trt == 1, d$period - start[d$cluster] + 1, 0)
}
contrasts_of <- function(b, shape) {
  if (shape == "it") return(list(effect = as.numeric(names(b) == "trt")))
  cols <- grep("^fe", names(b))
  L <- list(tate = as.numeric(seq_along(b) %in% cols) / length(cols))
  for (j in cols) L[[sub("^fe", "e", names(b)[j])]] <- as.numeric(seq_along(b) == j)
  L
}
report <- function(fit, b, V, vc, loglik, deviance, converged) {
  for (k in names(vc)) add(fit, k, vc[[k]])
  add(fit, "loglik", loglik)
  if (!is.na(deviance)) add(fit, "deviance", deviance)
  add(fit, "converged", converged)
  for (term in names(L <- contrasts_of(b, fit$shape))) {
    l <- L[[term]]
    add(fit, paste0(term, ":estimate"), sum(l * b))
    add(fit, paste0(term, ":std_error"), sqrt(drop(t(l) %*% V %*% l)))
  }
}
runs <- list(
  # dataset, family, model, shape, nAGQ
  c("sw_binom", "binomial", "hh", "it", 1), c("sw_binom", "binomial", "hh", "it", 10),
  c("sw_binom", "binomial", "hh", "eti", 1), c("sw_binom", "binomial", "hh", "eti", 10),
  c("sw_binom", "binomial", "ne", "it", 1), c("sw_binom", "binomial", "ne", "eti", 1),
  c("sw_binom", "poisson", "hh", "it", 1),
  c("sw_binom", "poisson", "ne", "it", 1), c("sim_decay", "binomial", "hh", "eti", 1),
  c("sim_decay", "binomial", "hh", "eti", 10), c("geecrt_bin", "binomial", "ed", "eti", 1),
  c("geecrt_bin", "binomial", "hh", "it", 1), c("geecrt_bin", "binomial", "hh", "it", 10),
  c("geecrt_bin", "binomial", "ne", "it", 1), c("geecrt_bin", "binomial", "ed", "it", 1),
  c("sim_binom", "binomial", "hh", "it", 1), c("sim_binom", "binomial", "hh", "it", 5),
  c("sim_binom", "binomial", "ne", "it", 1), c("sim_binom", "binomial", "ed", "it", 1),
  c("sim_decay", "binomial", "hh", "it", 1), c("sim_decay", "binomial", "ne", "it", 1),
  c("sim_decay", "binomial", "ed", "it", 1),
  c("sim_pois", "poisson", "hh", "it", 1), c("sim_pois", "poisson", "hh", "it", 10),
  c("sim_pois", "poisson", "ne", "it", 1), c("sim_pois", "poisson", "ne", "eti", 1),
  c("sim_overflow", "poisson", "hh", "it", 1), c("sim_overflow", "poisson", "ne", "it", 1),
  c("sim_zero_clusters", "poisson", "ne", "it", 1)
)
for (run in runs) {
  fit <- list(dataset = run[1], family = run[2], model = run[3], shape = run[4],
              nagq = as.integer(run[5]))
  d <- datasets[[fit$dataset]]
  d$fperiod <- factor(d$period)
  d$fe <- factor(exposure(d))
  rhs <- if (fit$shape == "it") "fperiod + trt" else "fperiod + fe"
  lhs <- if (fit$family == "binomial") "cbind(events, n - events) ~" else
    "events ~ offset(log(n)) +"
  fam <- if (fit$family == "binomial") binomial else poisson
  if (fit$model == "ed") {
    f <- as.formula(paste(lhs, rhs, "+ ar1(0 + fperiod | cluster)"))
    m <- glmmTMB(f, data = d, family = fam, control = tmbctrl)
    sdv <- attr(VarCorr(m)$cond$cluster, "stddev")[[1]]
    r <- attr(VarCorr(m)$cond$cluster, "correlation")[1, 2]
    ok <- m$fit$convergence == 0 && m$sdr$pdHess
    report(fit, fixef(m)$cond, vcov(m)$cond, list(tau2 = sdv^2, decay = r),
           as.numeric(logLik(m)), NA, as.numeric(ok))
  } else {
    re <- if (fit$model == "hh") "(1 | cluster)" else "(1 | cluster) + (1 | cluster:fperiod)"
    m <- glmer(as.formula(paste(lhs, rhs, "+", re)), data = d, family = fam,
               nAGQ = fit$nagq, control = ctrl)
    vc <- as.data.frame(VarCorr(m))
    comps <- list(tau2 = vc$vcov[vc$grp == "cluster"])
    if (fit$model == "ne") comps$gamma2 <- vc$vcov[vc$grp == "cluster:fperiod"]
    msgs <- m@optinfo$conv$lme4$messages
    ok <- m@optinfo$conv$opt == 0 && (is.null(msgs) || all(grepl("singular", msgs)))
    report(fit, fixef(m), as.matrix(vcov(m)), comps, as.numeric(logLik(m)),
           m@devcomp$cmp[["dev"]], as.numeric(ok))
    if (fit$nagq == 1) {
      # The same Laplace fit by glmmTMB, whose covariance uses the exact (AD) Hessian where
      # lme4 differences a deviance computed by PIRLS: a second reference for the SEs.
      t <- glmmTMB(as.formula(paste(lhs, rhs, "+", re)), data = d, family = fam,
                   control = tmbctrl)
      tv <- VarCorr(t)$cond
      tcomps <- list(tmb_tau2 = attr(tv$cluster, "stddev")[[1]]^2)
      if (fit$model == "ne") tcomps$tmb_gamma2 <- attr(tv[["cluster:fperiod"]], "stddev")[[1]]^2
      tok <- t$fit$convergence == 0 && t$sdr$pdHess
      for (k in names(tcomps)) add(fit, k, tcomps[[k]])
      add(fit, "tmb_loglik", as.numeric(logLik(t)))
      add(fit, "tmb_converged", as.numeric(tok))
      b <- fixef(t)$cond
      for (term in names(L <- contrasts_of(b, fit$shape))) {
        l <- L[[term]]
        add(fit, paste0(term, ":estimate_tmb"), sum(l * b))
        add(fit, paste0(term, ":std_error_tmb"), sqrt(drop(t(l) %*% vcov(t)$cond %*% l)))
      }
    }
  }
}
write.csv(out, "values.csv", row.names = FALSE, quote = FALSE)
cat(R.version.string, "; lme4", as.character(packageVersion("lme4")),
    "; glmmTMB", as.character(packageVersion("glmmTMB")),
    "; TMB", as.character(packageVersion("TMB")), "\n")
