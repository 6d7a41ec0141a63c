"""Power, variance and sample size for stepped-wedge and other cluster designs."""
