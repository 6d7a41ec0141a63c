# Reference values for pathfinder-eval's TWFE DiD and event study.
# Run from this folder: Rscript twfe.R   (writes values.csv)
# lm() with unit and period factors; CR1 cluster-robust covariance by unit from
# sandwich::vcovCL(type = "HC1", cadjust = TRUE): G/(G-1) * (N-1)/(N-K).
suppressPackageStartupMessages(library(sandwich))
d <- read.csv("panel.csv", stringsAsFactors = FALSE)
d$treated <- as.integer(d$cohort > 0 & d$period >= d$cohort)
out <- data.frame()
m <- lm(y ~ treated + factor(unit) + factor(period), data = d)
v <- vcovCL(m, cluster = ~unit, type = "HC1", cadjust = TRUE)
out <- rbind(out, data.frame(model = "twfe", term = "treated",
                             estimate = coef(m)[["treated"]], std_error = sqrt(v["treated", "treated"])))
# event study: relative time binned to [-3, 2], reference -1, never-treated all zero
rel <- ifelse(d$cohort > 0, pmin(pmax(d$period - d$cohort, -3), 2), NA)
for (e in c(-3, -2, 0, 1, 2)) d[[paste0("e", e + 10)]] <- as.integer(!is.na(rel) & rel == e)
m2 <- lm(y ~ e7 + e8 + e10 + e11 + e12 + factor(unit) + factor(period), data = d)
v2 <- vcovCL(m2, cluster = ~unit, type = "HC1", cadjust = TRUE)
for (e in c(-3, -2, 0, 1, 2)) {
  k <- paste0("e", e + 10)
  out <- rbind(out, data.frame(model = "event_study", term = as.character(e),
                               estimate = coef(m2)[[k]], std_error = sqrt(v2[k, k])))
}
out$estimate <- sprintf("%.15g", out$estimate); out$std_error <- sprintf("%.15g", out$std_error)
write.csv(out, "values.csv", row.names = FALSE, quote = FALSE)
cat(R.version.string, "; sandwich", as.character(packageVersion("sandwich")), "\n")
