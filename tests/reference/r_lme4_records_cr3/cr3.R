# Reference values for the stepped-wedge LMM's Mancl-DeRouen (clubSandwich CR3) variance on
# individual records with a covariate: lme4's REML fit (nested exchangeable, and with the
# closed cohort's person intercept), then the sandwich computed densely, cluster by cluster:
# B = (X'V^-1 X)^-1, u_i = X_i' V_i^-1 (I - X_i B X_i' V_i^-1)^-1 e_i, V = B (sum u_i u_i') B.
# Run from this folder: Rscript cr3.R   (writes values.csv; lme4 from Debian's r-cran-lme4)
suppressPackageStartupMessages(library(lme4))
d <- read.csv("records.csv")
d$cp <- interaction(d$cluster, d$period)
X <- model.matrix(~ 0 + factor(period) + trt + age, d)
ctl <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhobeg = 0.2, rhoend = 1e-12))
fits <- list(
  cross_sectional = lmer(y ~ 0 + factor(period) + trt + age + (1 | cluster) + (1 | cp),
                         data = d, REML = TRUE, control = ctl),
  cohort = lmer(y ~ 0 + factor(period) + trt + age + (1 | cluster) + (1 | cp) + (1 | person),
                data = d, REML = TRUE, control = ctl)
)
out <- data.frame()
for (name in names(fits)) {
  vc <- as.data.frame(VarCorr(fits[[name]]))
  part <- function(g) if (any(vc$grp == g)) vc$vcov[vc$grp == g] else 0
  tau2 <- part("cluster"); gamma2 <- part("cp"); psi2 <- part("person"); sigma2 <- part("Residual")
  W <- list(); F <- 0
  for (g in unique(d$cluster)) {
    i <- which(d$cluster == g)
    V <- tau2 + gamma2 * outer(d$cp[i], d$cp[i], "==") +
      psi2 * outer(d$person[i], d$person[i], "==") + sigma2 * diag(length(i))
    W[[g]] <- solve(V)
    F <- F + t(X[i, ]) %*% W[[g]] %*% X[i, ]
  }
  B <- solve(F)
  beta <- B %*% Reduce(`+`, lapply(unique(d$cluster), function(g) {
    i <- which(d$cluster == g); t(X[i, ]) %*% W[[g]] %*% d$y[i] }))
  e <- d$y - X %*% beta
  meat <- 0
  for (g in unique(d$cluster)) {
    i <- which(d$cluster == g); Xi <- X[i, , drop = FALSE]
    u <- t(Xi) %*% W[[g]] %*% solve(diag(length(i)) - Xi %*% B %*% t(Xi) %*% W[[g]], e[i])
    meat <- meat + u %*% t(u)
  }
  V <- B %*% meat %*% B
  for (term in c("trt", "age")) {
    k <- which(colnames(X) == term)
    out <- rbind(out, data.frame(fit = name, term = term, estimate = sprintf("%.15g", beta[k]),
                                 std_error = sprintf("%.15g", sqrt(V[k, k]))))
  }
}
write.csv(out, "values.csv", row.names = FALSE, quote = FALSE)
cat(sprintf("lme4 %s, %s\n", packageVersion("lme4"), R.version.string))
