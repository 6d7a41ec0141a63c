# Reference values for the CR2 (bias-reduced linearisation) sandwich of pathfinder-eval's
# stepped-wedge GEE. Run from this folder: Rscript cr2_gee.R   (writes values.csv)
# The fits are geepack::geeglm exactly as in ../r_geepack_stepped_wedge/geepack.R (categorical
# period effects and the treatment indicator, no intercept; exchangeable and independence;
# gaussian/identity on y_con and binomial/logit on y_bin; convergence tightened to the root).
# clubSandwich::vcovCR(fit, type = "CR2") with its geeglm defaults: the target is the working
# covariance (inverse_var = TRUE), clustered by geeglm's id; coef_test(..., test =
# "Satterthwaite") gives the Satterthwaite degrees of freedom of each coefficient.
# clubSandwich handles geeglm objects from version 0.5.9 on (Debian bookworm ships 0.5.8): install
# a current clubSandwich from CRAN, or put its library first with R_LIBS=<path>.
suppressPackageStartupMessages({
  library(geepack)
  library(clubSandwich)
})
if (packageVersion("clubSandwich") < "0.5.9") stop("clubSandwich >= 0.5.9 needed (geeglm support)")
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
  sim_large = read(file.path("..", "r_geepack_stepped_wedge", "sim_large.csv"), "cluster", "trt")
)
outcomes <- list(gaussian = "y_con", binomial = "y_bin")
out <- data.frame()
add <- function(dataset, family, corstr, parameter, quantity, value) {
  out <<- rbind(out, data.frame(dataset = dataset, family = family, correlation = corstr,
                                parameter = parameter, quantity = quantity,
                                value = sprintf("%.15g", value)))
}
for (name in names(datasets)) {
  d <- datasets[[name]]
  for (family in names(outcomes)) {
    d$y <- d[[outcomes[[family]]]]
    for (corstr in c("exchangeable", "independence")) {
      fit <- geeglm(y ~ 0 + factor(period) + trt, family = get(family), data = d,
                    id = cluster, corstr = corstr, std.err = "san.se",
                    control = geese.control(epsilon = 1e-12, maxit = 500))
      if (fit$geese$error != 0) stop("geeglm did not converge: ", name, family, corstr)
      v <- vcovCR(fit, cluster = d$cluster, type = "CR2")
      test <- coef_test(fit, vcov = v, test = "Satterthwaite")
      for (k in seq_along(coef(fit))) {
        add(name, family, corstr, paste0("beta", k - 1), "cr2.se", sqrt(v[k, k]))
        add(name, family, corstr, paste0("beta", k - 1), "satterthwaite.df", test$df_Satt[k])
      }
    }
  }
}
write.csv(out, "values.csv", row.names = FALSE, quote = FALSE)
cat(sprintf("geepack %s, clubSandwich %s, %s\n", packageVersion("geepack"),
            packageVersion("clubSandwich"), R.version.string))
