# Write the pretrends package's He & Wang (2017) event study as the CSV that
# `pathfinder-eval replicate he_wang_pretrends --data DIR` reads at DIR/did/he_wang_2017_event_study.csv:
# one row per coefficient (t, beta) and the covariance matrix's row (cov_<t> per column).
#
#   Rscript scripts/he_wang_event_study.R HeAndWangResults.rda DIR/did/he_wang_2017_event_study.csv
#
# HeAndWangResults.rda is data/HeAndWangResults.rda of github.com/jonathandroth/pretrends (MIT).
args <- commandArgs(trailingOnly = TRUE)
stopifnot(length(args) == 2)
load(args[1])
r <- HeAndWangResults
sigma <- as.matrix(r$sigma)
colnames(sigma) <- paste0("cov_", r$tVec)
out <- data.frame(t = r$tVec, beta = r$beta, sigma, check.names = FALSE)
dir.create(dirname(args[2]), showWarnings = FALSE, recursive = TRUE)
write.csv(out, args[2], row.names = FALSE)
