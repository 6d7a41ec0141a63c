# Reference values for pathfinder_eval.inference.cr2 (CR2 + Bell-McCaffrey/Satterthwaite df).
# Run from this folder: Rscript cr2.R   (writes values.csv)
# Each model is fitted twice: lm() with unit and period factors (the full design), and
# plm(model = "within", effect = "twoways") (absorbed fixed effects; clubSandwich then adds
# the unit and time dummies to the design it uses for the CR2 adjustment matrices). The two
# must agree; the lm values are written.
suppressPackageStartupMessages({library(clubSandwich); library(plm)})

fit_both <- function(d, rhs, label) {
  f <- as.formula(paste("y ~", paste(rhs, collapse = " + ")))
  m <- lm(update(f, . ~ . + factor(unit) + factor(period)), data = d)
  v <- vcovCR(m, cluster = d$unit, type = "CR2")
  ct <- coef_test(m, vcov = v, test = "Satterthwaite", coefs = rhs)
  p <- plm(f, data = d, index = c("unit", "period"), model = "within", effect = "twoways")
  vp <- vcovCR(p, cluster = "individual", type = "CR2")
  cp <- coef_test(p, vcov = vp, test = "Satterthwaite", coefs = rhs)
  cat(sprintf("%-22s lm vs plm: max rel diff SE %.2e, df %.2e\n", label,
              max(abs(cp$SE / ct$SE - 1)), max(abs(cp$df_Satt / ct$df_Satt - 1))))
  list(m = m, v = v,
       out = data.frame(data = label, term = rhs, estimate = ct$beta, std_error = ct$SE,
                        df = ct$df_Satt, p_value = ct$p_Satt))
}

out <- data.frame()
# 1. the r_sandwich_twfe panel: 30 units x 8 periods, 7 treated in two cohorts
a <- read.csv("../r_sandwich_twfe/panel.csv", stringsAsFactors = FALSE)
a$treated <- as.integer(a$cohort > 0 & a$period >= a$cohort)
out <- rbind(out, fit_both(a, "treated", "sandwich_panel")$out)
# event study on the same panel: relative time binned to [-3, 2], reference -1
rel <- ifelse(a$cohort > 0, pmin(pmax(a$period - a$cohort, -3), 2), NA)
for (e in c(-3, -2, 0, 1, 2)) a[[paste0("e", e + 10)]] <- as.integer(!is.na(rel) & rel == e)
es <- fit_both(a, c("e7", "e8", "e10", "e11", "e12"), "sandwich_panel_es")
out <- rbind(out, es$out)
# a linear contrast: the mean of the three post-period coefficients
k <- names(coef(es$m))
cvec <- matrix(as.numeric(k %in% c("e10", "e11", "e12")) / 3, nrow = 1)
lc <- linear_contrast(es$m, vcov = es$v, contrasts = cvec, test = "Satterthwaite",
                      p_values = TRUE)
out <- rbind(out, data.frame(data = "sandwich_panel_es", term = "mean_post",
                             estimate = lc$Est, std_error = lc$SE, df = lc$df,
                             p_value = lc$p_val))
# 2. 3 treated of 30 units, balanced and with 8 cells dropped
b <- read.csv("panel_3of30.csv", stringsAsFactors = FALSE)
b$treated <- as.integer(b$cohort > 0 & b$period >= b$cohort)
out <- rbind(out, fit_both(b, "treated", "3of30")$out)
out <- rbind(out, fit_both(b[b$keep == 1, ], "treated", "3of30_unbalanced")$out)

for (col in c("estimate", "std_error", "df", "p_value")) out[[col]] <- sprintf("%.15g", out[[col]])
write.csv(out, "values.csv", row.names = FALSE, quote = FALSE)
cat(R.version.string, "; clubSandwich", as.character(packageVersion("clubSandwich")),
    "; plm", as.character(packageVersion("plm")), "\n")
