# Reference values for pathfinder-eval's Poisson QMLE TWFE (estimators/twfe_poisson.py).
# Run from this folder: Rscript poisson_twfe.R   (writes values.csv)
# glm(family = poisson) with unit and period factors and offset log(population); covariance
# CR1 by unit from sandwich::vcovCL(type = "HC1", cadjust = TRUE): G/(G-1) * (N-1)/(N-K).
suppressPackageStartupMessages(library(sandwich))
d <- read.csv("panel.csv", stringsAsFactors = FALSE)
m <- glm(count ~ treated + factor(unit) + factor(period), family = poisson,
         offset = log(population), data = d, control = glm.control(epsilon = 1e-12, maxit = 100))
v <- vcovCL(m, cluster = ~unit, type = "HC1", cadjust = TRUE)
out <- data.frame(model = "poisson_twfe", term = "treated",
                  estimate = sprintf("%.15g", coef(m)[["treated"]]),
                  std_error = sprintf("%.15g", sqrt(v["treated", "treated"])),
                  n_obs = nrow(d), n_params = length(coef(m)))
write.csv(out, "values.csv", row.names = FALSE, quote = FALSE)
cat(R.version.string, "; sandwich", as.character(packageVersion("sandwich")), "\n")
