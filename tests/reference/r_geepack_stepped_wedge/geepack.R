# Reference values for pathfinder-eval's stepped-wedge GEE with correlation_method = "moment".
# Run from this folder: Rscript geepack.R   (writes values.csv)
# geepack::geeglm with categorical period effects and the treatment indicator (no intercept),
# id = cluster, corstr exchangeable and independence, gaussian/identity on y_con and
# binomial/logit on y_bin, poisson/log on each person's count y_cnt (sim_counts.csv), the scale
# estimated (geeglm's default scale.fix = FALSE) and the
# robust sandwich (std.err = "san.se"). Convergence tightened far below geese.control's
# default epsilon 1e-4 so that the values are the estimating equations' root.
# Datasets: geeCRT's sample trials read in place from ../shared (never copied) and the seeded
# simulated trial in this folder (make_sim.py).
suppressPackageStartupMessages(library(geepack))
shared <- file.path("..", "..", "..", "..", "shared", "data", "reference", "stepped_wedge")
read <- function(file, cluster, trt) {
  d <- read.csv(file, stringsAsFactors = FALSE)
  d <- data.frame(cluster = d[[cluster]], period = d$period, trt = d[[trt]],
                  y_con = d$y_con, y_bin = d$y_bin)
  d[order(d$cluster, d$period), ]  # geeglm needs each cluster's rows contiguous
}
datasets <- list(
  geecrt_small = read(file.path(shared, "geeCRT_sampleSWCRTSmall.csv"), "id", "treatment"),
  geecrt_large = read(file.path(shared, "geeCRT_sampleSWCRTLarge.csv"), "id", "treatment"),
  sim_large = read("sim_large.csv", "cluster", "trt"),
  sim_small_cells = read("sim_small_cells.csv", "cluster", "trt")
)
outcomes <- list(gaussian = "y_con", binomial = "y_bin")
out <- data.frame()
add <- function(dataset, family, corstr, parameter, quantity, value) {
  out <<- rbind(out, data.frame(dataset = dataset, family = family, correlation = corstr,
                                parameter = parameter, quantity = quantity,
                                value = sprintf("%.15g", value)))
}
fit_one <- function(name, d, family, corstr) {
  fit <- geeglm(y ~ 0 + factor(period) + trt, family = get(family), data = d,
                id = cluster, corstr = corstr, std.err = "san.se",
                control = geese.control(epsilon = 1e-12, maxit = 500))
  if (fit$geese$error != 0) stop("geeglm did not converge: ", name, family, corstr)
  beta <- coef(fit)
  se <- summary(fit)$coefficients[, "Std.err"]
  for (k in seq_along(beta)) {
    add(name, family, corstr, paste0("beta", k - 1), "estimate", beta[[k]])
    add(name, family, corstr, paste0("beta", k - 1), "san.se", se[[k]])
  }
  if (corstr == "exchangeable") add(name, family, corstr, "alpha", "estimate",
                                    fit$geese$alpha[[1]])
  add(name, family, corstr, "phi", "estimate", fit$geese$gamma[[1]])
}
for (name in names(datasets)) {
  d <- datasets[[name]]
  for (family in names(outcomes)) {
    d$y <- d[[outcomes[[family]]]]
    for (corstr in c("exchangeable", "independence")) fit_one(name, d, family, corstr)
  }
}
# each person's count of events (0, 1, 2, ...): poisson/log, no offset
counts <- read.csv("sim_counts.csv")
counts <- counts[order(counts$cluster, counts$period), ]
counts$y <- counts$y_cnt
for (corstr in c("exchangeable", "independence")) fit_one("sim_counts", counts, "poisson", corstr)
write.csv(out, "values.csv", row.names = FALSE, quote = FALSE)
cat(sprintf("geepack %s, %s\n", packageVersion("geepack"), R.version.string))
