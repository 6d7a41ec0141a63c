# Reference values for pathfinder-eval's test that the intervention effect does not change with
# exposure time: the Kenward-Roger F test of the exposure-time-indicator model against the
# immediate-effect model it nests, pbkrtest::KRmodcomp on lme4::lmer REML fits (Hussey & Hughes
# and nested exchangeable). Data: the seeded simulated trials of ../r_lme4_stepped_wedge and the
# geeCRT small trial read in place from ../shared (never copied).
# Run from this folder: Rscript kr_shape.R   (writes values.csv)
suppressPackageStartupMessages({ library(lme4); library(pbkrtest) })
shared <- file.path("..", "..", "..", "..", "shared", "data", "reference", "stepped_wedge")
read <- function(file, cluster, trt, y) {
  d <- read.csv(file, stringsAsFactors = FALSE)
  d <- data.frame(cluster = as.character(d[[cluster]]), period = d$period, trt = d[[trt]],
                  y = d[[y]])
  start <- tapply(ifelse(d$trt == 1, d$period, Inf), d$cluster, min)
  d$exposure <- pmax(0, d$period - start[d$cluster] + 1)
  d$exposure[!is.finite(d$exposure)] <- 0
  d$fperiod <- factor(d$period)
  d$fexposure <- factor(d$exposure)
  d
}
datasets <- list(
  sim_ne = read(file.path("..", "r_lme4_stepped_wedge", "sim_ne.csv"), "cluster", "trt", "y"),
  geecrt_small = read(file.path(shared, "geeCRT_sampleSWCRTSmall.csv"), "id", "treatment",
                      "y_con")
)
ctrl <- lmerControl(optimizer = "nloptwrap",
                    optCtrl = list(xtol_abs = 1e-14, ftol_abs = 1e-15, xtol_rel = 1e-14,
                                   ftol_rel = 1e-15, maxeval = 100000),
                    check.conv.singular = "ignore")
out <- data.frame()
for (name in names(datasets)) {
  d <- datasets[[name]]
  for (model in c("hussey_hughes", "nested_exchangeable")) {
    re <- if (model == "hussey_hughes") "(1 | cluster)" else "(1 | cluster) + (1 | cluster:fperiod)"
    big <- lmer(as.formula(paste("y ~ 0 + fperiod + fexposure +", re)), data = d, REML = TRUE,
                control = ctrl)
    small <- lmer(as.formula(paste("y ~ 0 + fperiod + trt +", re)), data = d, REML = TRUE,
                  control = ctrl)
    kr <- KRmodcomp(big, small)$test["Ftest", ]
    vals <- c(statistic = kr$stat, df_num = kr$ndf, df_den = kr$ddf,
              scaling = kr$F.scaling, p_value = kr$p.value)
    out <- rbind(out, data.frame(dataset = name, model = model, quantity = names(vals),
                                 value = sprintf("%.15g", vals)))
  }
}
write.csv(out, "values.csv", row.names = FALSE, quote = FALSE)
print(out)
