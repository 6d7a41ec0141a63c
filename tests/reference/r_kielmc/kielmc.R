# Reference values for pathfinder-eval's 2x2 difference-in-differences (estimators/did2x2.py).
# Wooldridge, Introductory Econometrics, Example 13.3: kielmc house prices, 1978 and 1981.
# Run from this folder: Rscript kielmc.R   (reads the bundled copy, writes values.csv)
# lm() with the same specifications; standard errors: usual OLS, sandwich::vcovHC(type = "HC1"),
# and CR1 by the cbd value (an arbitrary grouping used only to exercise the cluster path):
# sandwich::vcovCL(type = "HC1", cadjust = TRUE) = G/(G-1) * (N-1)/(N-K).
suppressPackageStartupMessages(library(sandwich))
d <- read.csv("../../../src/pathfinder_eval/replications/data/kielmc.csv")
specs <- list(
  rprice = rprice ~ y81 + nearinc + y81nrinc,
  rprice_age = rprice ~ y81 + nearinc + y81nrinc + age + agesq,
  rprice_full = rprice ~ y81 + nearinc + y81nrinc + age + agesq + intst + land + area +
    rooms + baths,
  lprice = lprice ~ y81 + nearinc + y81nrinc,
  lrprice = lrprice ~ y81 + nearinc + y81nrinc
)
out <- data.frame()
fmt <- function(x) sprintf("%.15g", x)
add <- function(model, m, weighted) {
  v0 <- vcov(m)
  v1 <- vcovHC(m, type = "HC1")
  vc <- vcovCL(m, cluster = ~cbd, type = "HC1", cadjust = TRUE)
  for (k in names(coef(m))) {
    out <<- rbind(out, data.frame(
      model = model, weighted = weighted, term = k, estimate = fmt(coef(m)[[k]]),
      se_nonrobust = fmt(sqrt(v0[k, k])), se_hc1 = fmt(sqrt(v1[k, k])),
      se_cluster = fmt(sqrt(vc[k, k])), df_resid = df.residual(m)
    ))
  }
}
for (s in names(specs)) add(s, lm(specs[[s]], data = d), 0L)
# weighted by lot size (land), only to check the WLS path
add("rprice", lm(specs$rprice, data = d, weights = land), 1L)
add("rprice_age", lm(specs$rprice_age, data = d, weights = land), 1L)
write.csv(out, "values.csv", row.names = FALSE, quote = FALSE)
cat(R.version.string, "; sandwich", as.character(packageVersion("sandwich")), "\n")
