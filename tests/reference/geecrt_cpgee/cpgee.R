# Reference values for pathfinder-eval's cluster-period GEE (estimators/stepped_wedge/
# cluster_period_gee.py): geeCRT::cpgeeSWD (Li, Yu, Rathouz, Turner & Preisser 2022,
# Biostatistics 23:772-788) on geeCRT's two sample trials, binary outcome, the vignette's
# calls (exchangeable, nested exchangeable, exponential decay; MAEE alpadj = TRUE and GEE
# alpadj = FALSE), each at the vignette's epsilon = 1e-3 and again at epsilon = 1e-10 (the
# converged root). Data are read in place from ../shared (never copied).
# Run from this folder:  R_LIBS=<lib with geeCRT 1.1.4> Rscript cpgee.R   (writes values.csv)
suppressPackageStartupMessages(library(geeCRT))
stopifnot(packageVersion("geeCRT") == "1.1.4")
shared <- file.path("..", "..", "..", "..", "shared", "data", "reference", "stepped_wedge")

# The vignette's preparation of cluster-period means, sizes and design.
cluster_periods <- function(file) {
  d <- read.csv(file.path(shared, file))
  t <- max(d$period)
  m <- as.matrix(table(d$id, d$period))
  n <- nrow(m)
  y_cp <- c(t(tapply(d$y_bin, list(d$id, d$period), FUN = mean)))
  trt <- c(t(tapply(d$treatment, list(d$id, d$period), FUN = mean)))
  X_cp <- cbind(kronecker(rep(1, n), diag(t)), trt)
  list(y = y_cp, X = X_cp, id = rep(1:n, each = t), m = c(t(m)))
}

# One fit's rows: estimates and MB, BC0-BC3 standard errors of beta and alpha (15 digits),
# and the iteration count as geeCRT prints it.
record <- function(fit, dataset, corstr, alpadj, epsilon) {
  base <- data.frame(dataset = dataset, correlation = corstr,
                     method = if (alpadj) "maee" else "gee", epsilon = epsilon)
  p <- length(fit$beta)
  q <- length(fit$alpha)
  out <- list()
  for (k in seq_len(p + q)) {
    est <- if (k <= p) fit$beta[k] else fit$alpha[k - p]
    name <- if (k <= p) paste0("beta", k - 1) else paste0("alpha", k - p - 1)
    vals <- c(estimate = est, MB = if (k <= p) sqrt(fit$MB[k, k]) else NA,
              BC0 = sqrt(fit$BC0[k, k]), BC1 = sqrt(fit$BC1[k, k]),
              BC2 = sqrt(fit$BC2[k, k]), BC3 = sqrt(fit$BC3[k, k]))
    vals <- vals[!is.na(vals)]
    out[[k]] <- cbind(base, parameter = name, quantity = names(vals),
                      value = sprintf("%.15g", vals))
  }
  out[[p + q + 1]] <- cbind(base, parameter = "", quantity = "iterations_printed",
                            value = as.character(fit$niter))
  do.call(rbind, out)
}

rows <- list()
for (dataset in c("small", "large")) {
  file <- if (dataset == "small") "geeCRT_sampleSWCRTSmall.csv" else "geeCRT_sampleSWCRTLarge.csv"
  cp <- cluster_periods(file)
  for (corstr in c("exchangeable", "nest_exch", "exp_decay")) {
    for (alpadj in c(TRUE, FALSE)) {
      for (epsilon in c(1e-3, 1e-10)) {
        fit <- cpgeeSWD(y = cp$y, X = cp$X, id = cp$id, m = cp$m, corstr = corstr,
                        alpadj = alpadj, epsilon = epsilon, printrange = FALSE)
        rows[[length(rows) + 1]] <- record(fit, dataset, corstr, alpadj, epsilon)
      }
    }
  }
}
# Unobserved cells: cluster 1 without its last period (every structure; positions within the
# cluster are then the periods, so geeCRT's decay lags are right) and without period 2
# (exchangeable and nested exchangeable only: geeCRT counts decay lags by position).
cp <- cluster_periods("geeCRT_sampleSWCRTSmall.csv")
for (drop in c("last", "middle")) {
  gone <- cp$id == 1 & seq_along(cp$id) == if (drop == "last") 4 else 2
  for (corstr in if (drop == "last") c("exchangeable", "nest_exch", "exp_decay")
                 else c("exchangeable", "nest_exch")) {
    fit <- cpgeeSWD(y = cp$y[!gone], X = cp$X[!gone, ], id = cp$id[!gone], m = cp$m[!gone],
                    corstr = corstr, alpadj = TRUE, epsilon = 1e-10, printrange = FALSE)
    rows[[length(rows) + 1]] <- record(fit, paste0("small_drop_", drop), corstr, TRUE, 1e-10)
  }
}
out <- do.call(rbind, rows)
write.csv(out, "values.csv", row.names = FALSE, quote = FALSE)
cat(nrow(out), "rows written\n")
