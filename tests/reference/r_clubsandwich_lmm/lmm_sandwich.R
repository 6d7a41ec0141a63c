# Reference values for pathfinder-eval's cluster-robust LMM variances (inference cr2 and
# mancl_derouen): nlme::lme by REML, then clubSandwich::vcovCR(fit, type = "CR2") and "CR3" (the
# Mancl-DeRouen correction (I - H_ii)^-1) with their default target for lme (the fitted
# covariance, inverse_var = TRUE), and coef_test(..., test = "Satterthwaite") for CR2.
# Models: nested exchangeable, random = ~ 1 | cluster/period, on sim_ne.csv (the model's own
# truth) and on ../r_lme4_random_slope/sim_slope.csv (whose clusters have their own effects);
# random slope, random = list(cluster = pdSymm(~ trt), period = ~ 1), on sim_slope.csv.
# Run from this folder: Rscript lmm_sandwich.R   (writes values.csv)
suppressPackageStartupMessages({ library(nlme); library(clubSandwich) })
files <- c(sim_ne = file.path("..", "r_lme4_stepped_wedge", "sim_ne.csv"),
           sim_slope = file.path("..", "r_lme4_random_slope", "sim_slope.csv"))
ctrl <- lmeControl(maxIter = 500, msMaxIter = 500, tolerance = 1e-10, msTol = 1e-12,
                   niterEM = 100, opt = "nlminb")
out <- data.frame()
add <- function(dataset, model, quantity, value) {
  out <<- rbind(out, data.frame(dataset = dataset, model = model, quantity = quantity,
                                value = sprintf("%.15g", value)))
}
fits <- list(c("sim_ne", "nested_exchangeable"), c("sim_slope", "nested_exchangeable"),
             c("sim_slope", "random_slope"))
for (f in fits) {
  d <- read.csv(files[[f[1]]])
  d$cluster <- factor(d$cluster)
  d$period_f <- factor(d$period)
  d <- d[order(d$cluster, d$period), ]
  random <- if (f[2] == "random_slope") list(cluster = pdSymm(~ trt), period_f = ~ 1) else
    ~ 1 | cluster / period_f
  m <- lme(y ~ 0 + factor(period) + trt, random = random, data = d, method = "REML",
           control = ctrl)
  k <- which(names(fixef(m)) == "trt")
  cr2 <- vcovCR(m, type = "CR2")
  cr3 <- vcovCR(m, type = "CR3")
  test <- coef_test(m, vcov = cr2, test = "Satterthwaite")
  add(f[1], f[2], "trt:estimate", fixef(m)[[k]])
  add(f[1], f[2], "reml_loglik", as.numeric(logLik(m)))
  add(f[1], f[2], "trt:cr2_se", sqrt(cr2[k, k]))
  add(f[1], f[2], "trt:cr2_df", test$df_Satt[k])
  add(f[1], f[2], "trt:cr3_se", sqrt(cr3[k, k]))
}
write.csv(out, "values.csv", row.names = FALSE, quote = FALSE)
cat(sprintf("nlme %s, clubSandwich %s, %s\n", packageVersion("nlme"),
            packageVersion("clubSandwich"), R.version.string))
