# Reference values for pathfinder_eval.estimators.did.stacked (Wing, Freedman & Hollingsworth
# 2024 weighted stacked DiD). Run from this folder: Rscript stacked.R   (writes values.csv)
# The stack and its corrective weights follow the authors' tutorial
# (github.com/hollina/stacked-did-weights: create_sub_exp, compute_weights); the event-study
# regression is lm() with weights and the treat and event-time dummies, and the standard
# errors are sandwich::vcovCL(type = "HC1") clustered by unit: G/(G-1) (n-1)/(n-p), the factor
# of the tutorial's fixest and reghdfe runs (none of their fixed effects is nested in units).
suppressPackageStartupMessages({library(sandwich)})

stack <- function(d, kpre, kpost, control) {
  tmin <- min(d$period); tmax <- max(d$period)
  events <- sort(unique(d$cohort[is.finite(d$cohort)]))
  parts <- list()
  for (a in events) {
    if (a - kpre < tmin || a + kpost > tmax) next
    clean <- if (control == "not_yet_treated") d$cohort > a + kpost else !is.finite(d$cohort)
    if (!any(clean)) next
    s <- d[(d$cohort == a | clean) & d$period >= a - kpre & d$period <= a + kpost, ]
    s$treat <- as.integer(s$cohort == a)
    s$event_time <- s$period - a
    s$sub_exp <- a
    parts[[length(parts) + 1]] <- s
  }
  s <- do.call(rbind, parts)
  # compute_weights: shares of the stack's treated and control rows at each event time
  key <- paste(s$sub_exp, s$event_time)
  st <- ave(s$treat, s$event_time, FUN = sum)
  sc <- ave(1 - s$treat, s$event_time, FUN = sum)
  ut <- ave(s$treat, key, FUN = sum)
  uc <- ave(1 - s$treat, key, FUN = sum)
  s$w <- ifelse(s$treat == 1, 1, (ut / st) / (uc / sc))
  s
}

fit <- function(d, kpre, kpost, control, label) {
  s <- stack(d, kpre, kpost, control)
  times <- setdiff(sort(unique(s$event_time)), -1)
  terms <- character(0)
  for (e in times) {  # event-time dummies and their treat interactions, e = -1 left out
    s[[paste0("lam", e + 100)]] <- as.integer(s$event_time == e)
    s[[paste0("del", e + 100)]] <- s$treat * (s$event_time == e)
    terms <- c(terms, paste0("del", e + 100))
  }
  rhs <- c("treat", paste0("lam", times + 100), terms)
  m <- lm(reformulate(rhs, "y"), data = s, weights = w)
  v <- vcovCL(m, cluster = ~unit, type = "HC1")
  b <- coef(m)
  post <- as.numeric(names(b) %in% terms[times >= 0]) / sum(times >= 0)
  est <- c(sum(post * b), b[terms])
  se <- c(sqrt(drop(t(post) %*% v %*% post)), sqrt(diag(v)[terms]))
  data.frame(data = label, kappa_pre = kpre, kappa_post = kpost, control = control,
             event_time = c(NA, times), estimate = est, std_error = se)
}

mp <- read.csv("../../../src/pathfinder_eval/replications/data/mpdta.csv")
mp <- data.frame(unit = mp$countyreal, period = mp$year, y = mp$lemp,
                 cohort = ifelse(mp$first.treat == 0, Inf, mp$first.treat))
la <- read.csv("../r_clubsandwich_twfe/panel_3of30.csv")
la$cohort <- ifelse(la$cohort == 0, Inf, la$cohort)
out <- rbind(
  fit(mp, 1, 0, "not_yet_treated", "mpdta"),
  fit(mp, 3, 0, "not_yet_treated", "mpdta"),
  fit(mp, 1, 1, "not_yet_treated", "mpdta"),
  fit(mp, 2, 1, "never_treated", "mpdta"),
  fit(la, 4, 3, "not_yet_treated", "panel_3of30"),
  fit(la, 2, 2, "never_treated", "panel_3of30"),
  fit(la[la$keep == 1, ], 3, 2, "not_yet_treated", "panel_3of30_unbalanced")
)
for (col in c("estimate", "std_error")) out[[col]] <- sprintf("%.15g", out[[col]])
write.csv(out, "values.csv", row.names = FALSE, quote = FALSE, na = "")
cat(R.version.string, "; sandwich", as.character(packageVersion("sandwich")), "\n")
