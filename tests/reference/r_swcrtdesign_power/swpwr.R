# Reference values for pathfinder_eval.power.analytic: swCRTdesign's swPwr help-page examples 1-7
# (random intercepts; independent and correlated random intervention effects eta, rho; random
# cluster-period effects gamma; cluster sizes varying by cluster and by cluster and period).
# The help page prints no output, so this script runs the examples as written there and records
# the power and the WLS variance of the effect to 15 significant digits.
# Run from this folder: Rscript swpwr.R   (writes values.csv; needs swCRTdesign 4.0, which is on
# CRAN but not in Debian: install it, or put its library first with R_LIBS=<path>).
suppressPackageStartupMessages(library(swCRTdesign))
run <- function(...) suppressWarnings(swPwr(..., alpha = 0.05, retDATA = TRUE, silent = TRUE))
examples <- list(
  ex1 = run(swDsn(c(6, 6, 6, 6)), distn = "binomial", n = 120, mu0 = 0.05, mu1 = 0.035,
            tau = 0.01, eta = 0, rho = 0, gamma = 0),
  ex2 = run(swDsn(c(6, 6, 6, 6), extra.trt.time = 3), distn = "binomial", n = 120, mu0 = 0.05,
            mu1 = 0.035, tau = 0.01, eta = 0, rho = 0, gamma = 0),
  ex3 = run(swDsn(c(6, 6, 6, 6)), distn = "binomial", n = 120, mu0 = 0.05, mu1 = 0.035,
            tau = 0.01, eta = 0.0045, rho = 0, gamma = 0),
  ex4 = run(swDsn(c(6, 6, 6, 6)), distn = "binomial", n = 120, mu0 = 0.05, mu1 = 0.035,
            tau = 0.01, eta = 0.0045, rho = 0.4, gamma = 0),
  ex5 = run(swDsn(c(6, 6, 6, 6)), distn = "binomial", n = 120, mu0 = 0.05, mu1 = 0.035,
            tau = 0.01, eta = 0.0045, rho = 0.4, gamma = 0.1),
  ex6 = run(swDsn(c(4, 3, 5, 4)), distn = "gaussian",
            n = c(35219, 53535, 63785, 456132, 128670, 96673, 51454, 156667, 127440, 68615,
                  56502, 17719, 75931, 58655, 52874, 75936),
            mu0 = 2.66, mu1 = 2.15, sigma = sqrt(1 / 2.66), tau = 0.31, eta = 0.2, rho = 0,
            gamma = 0.15),
  ex7 = run(swDsn(c(3, 3, 3, 3)), distn = "binomial",
            n = matrix(c(26, 493, 64, 45, 48, 231, 117, 17, 49, 36, 19, 77, 67, 590, 261, 212,
                         67, 318, 132, 58, 44, 57, 59, 78, 115, 532, 176, 199, 73, 293, 129, 79,
                         51, 62, 109, 94, 174, 785, 133, 79, 120, 305, 224, 99, 83, 79, 122, 122,
                         94, 961, 90, 131, 166, 352, 316, 59, 54, 131, 101, 133),
                       nrow = 12, ncol = 5, byrow = FALSE),
            mu0 = 0.08, mu1 = 0.06, tau = 0.017, eta = 0.006, rho = -0.5, gamma = 0)
)
out <- do.call(rbind, lapply(names(examples), function(k) {
  e <- examples[[k]]
  data.frame(example = k, quantity = c("power", "variance"),
             value = sprintf("%.15g", c(e$pwrWLS[[1]], e$var.theta.WLS[[1]])))
}))
write.csv(out, "values.csv", row.names = FALSE, quote = FALSE)
cat(sprintf("swCRTdesign %s, %s\n", packageVersion("swCRTdesign"), R.version.string))
