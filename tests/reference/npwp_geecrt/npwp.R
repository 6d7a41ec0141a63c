# Reference values for pathfinder-eval's within-period randomisation statistics, written in base R
# from their published definitions (no pathfinder-eval code): Thompson et al. (2018, Stat. Med.
# 37:2487-2500) NPWP as their Stata command runs it,
#   swpermute _b[arm], withinperiod weightperiod(variance _se[arm]^2): regress summary arm
# and swpermute's default weightperiod(N), weights (1/n1 + 1/n0)^-1.
# Data: geeCRT's small sample trial (12 clusters, 4 periods, sequences of 4 clusters starting in
# periods 2, 3, 4), read in place from ../shared (never copied); the cluster-period summary is
# the mean of y_con. Every one of the 34,650 allocations of clusters to the observed sequences
# is enumerated. Run from this folder: Rscript npwp.R   (writes values.csv)
shared <- file.path("..", "..", "..", "..", "shared", "data", "reference", "stepped_wedge")
d <- read.csv(file.path(shared, "geeCRT_sampleSWCRTSmall.csv"))
cp <- aggregate(y_con ~ id + period, data = d, FUN = mean)
Y <- matrix(NA_real_, 12, 4)
Y[cbind(cp$id, cp$period)] <- cp$y_con
start <- as.vector(tapply(ifelse(d$treatment == 1, d$period, Inf), d$id, min))
stopifnot(all(table(start) == 4), !anyNA(Y))

# all allocations: each way to give 4 clusters start 2, 4 of the rest start 3, the rest start 4
allocs <- list()
for (a in combn(12, 4, simplify = FALSE)) {
  rest <- setdiff(1:12, a)
  for (b in combn(rest, 4, simplify = FALSE)) {
    s <- rep(4, 12); s[a] <- 2; s[b] <- 3
    allocs[[length(allocs) + 1]] <- s
  }
}
S <- do.call(rbind, allocs)
stopifnot(nrow(S) == 34650, nrow(unique(S)) == 34650)
treated_obs <- outer(start, 1:4, "<=") * 1

statistic <- function(S, Yb, weights) {
  num <- den <- numeric(nrow(S))
  for (j in 1:4) {
    tr <- (S <= j) * 1
    y <- Yb[, j]
    n1 <- rowSums(tr); n0 <- 12 - n1
    m1 <- drop(tr %*% y) / n1
    m0 <- drop((1 - tr) %*% y) / n0
    ss <- drop(tr %*% y^2) - n1 * m1^2 + drop((1 - tr) %*% y^2) - n0 * m0^2
    s2 <- ss / (n1 + n0 - 2)
    ok <- n1 > 0 & n0 > 0
    w <- ifelse(ok, 1 / (1 / n1 + 1 / n0), 0)
    if (weights == "variance") w <- ifelse(ok & n1 + n0 > 2 & s2 > 0, w / s2, 0)
    est <- ifelse(ok, m1 - m0, 0)
    num <- num + w * est
    den <- den + w
  }
  num / den
}

# the observed allocation's per-period contrasts and weights, checked against regress (lm)
obs_row <- which(apply(S, 1, function(s) all(s == start)))
for (j in 2:3) {  # periods 1 and 4 have no contrast (all control, all intervention)
  fit <- summary(lm(Y[, j] ~ I(start <= j)))$coefficients
  tr <- start <= j
  s2 <- (sum((Y[tr, j] - mean(Y[tr, j]))^2) + sum((Y[!tr, j] - mean(Y[!tr, j]))^2)) / 10
  stopifnot(abs(fit[2, 1] - (mean(Y[tr, j]) - mean(Y[!tr, j]))) < 1e-12,
            abs(fit[2, 2]^2 - s2 * (1 / sum(tr) + 1 / sum(!tr))) < 1e-12)
}

p_value <- function(b, weights) {
  t <- statistic(S, Y - b * treated_obs, weights)
  scale <- max(max(abs(t)), 1)
  c(count = sum(abs(t) >= abs(t[obs_row]) - 1e-10 * scale), estimate = t[obs_row])
}
# test inversion: the acceptance region {b : p(b) > 0.05}, each end by widening then bisection
end_of <- function(estimate, step, weights) {
  inside <- estimate; outside <- estimate + step
  while (p_value(outside, weights)[["count"]] / nrow(S) > 0.05) {
    new <- outside + 2 * (outside - estimate); inside <- outside; outside <- new
  }
  while (abs(outside - inside) > 1e-9) {
    mid <- (inside + outside) / 2
    if (p_value(mid, weights)[["count"]] / nrow(S) <= 0.05) outside <- mid else inside <- mid
  }
  (inside + outside) / 2
}
out <- data.frame()
for (weights in c("variance", "count")) {
  name <- if (weights == "variance") "npwp" else "within_period"
  at0 <- p_value(0, weights)
  t0 <- statistic(S, Y, weights)
  spread <- sqrt(mean((t0 - mean(t0))^2))
  vals <- c(estimate = at0[["estimate"]], count = at0[["count"]], total = nrow(S),
            p_value = at0[["count"]] / nrow(S),
            ci_lower = end_of(at0[["estimate"]], -spread, weights),
            ci_upper = end_of(at0[["estimate"]], spread, weights))
  out <- rbind(out, data.frame(statistic = name, quantity = names(vals),
                               value = sprintf("%.15g", vals)))
}
write.csv(out, "values.csv", row.names = FALSE, quote = FALSE)
cat(R.version.string, "\n")
