"""A slow test oracle for estimators/sw_gee.py: the same GEE/MAEE algorithm on individual
records with a dense n_i × n_i working covariance per cluster and explicit pairs j < k (in
period order, then data order), written from the estimating equations rather than the cell
algebra. Only for tiny datasets."""

from __future__ import annotations

import numpy as np

from pathfinder_eval.estimators.stepped_wedge.gee import (
    FG_CAP,
    _alpha_variance,
    _mean,
    working_structure,
)


def _clusters(cluster, period, y, X):
    order = np.lexsort((np.arange(len(y)), period, cluster))
    cluster, period, y, X = cluster[order], period[order], y[order], X[order]
    return [(period[cluster == c], y[cluster == c], X[cluster == c]) for c in np.unique(cluster)]


def _pieces(clusters, family, correlation, method, beta, alpha, phi, naive, T, symmetric):
    """Per-cluster U_i (p+q), information blocks F_i, A_i, the α–β derivative and trace."""
    out = []
    a, B, da, dB = working_structure(correlation, alpha, T)
    for per, y, X in clusters:
        mu, g, v0 = _mean(family, X @ beta)
        v = v0 * phi
        sd = np.sqrt(v)
        same = per[:, None] == per[None, :]
        gamma = np.where(same, a, B[per[:, None], per[None, :]])
        R = np.where(np.eye(len(y), dtype=bool), 1.0, gamma)
        V = sd[:, None] * R * sd[None, :]
        Vinv = np.linalg.inv(V)
        D = g[:, None] * X
        r = y - mu
        Ub, F = D.T @ Vinv @ r, D.T @ Vinv @ D
        Omega = D @ naive @ D.T
        C = V @ np.linalg.inv(V - Omega)
        if family != "poisson":
            C = C / sd[:, None] * sd[None, :]
        e = r / sd
        CG = C @ np.outer(e, e)
        trace = np.trace(CG)
        G = CG if method == "maee" else np.outer(e, e)
        if symmetric:  # average over orderings within each cell (cells stay in period order)
            G = np.where(same, (G + G.T) / 2.0, G)
        j, k = np.triu_indices(len(y), 1)
        gam = gamma[j, k]
        z = np.where(same[j, k][:, None], da[None, :], dB[:, per[j], per[k]].T)
        if method == "moment":
            W = np.ones_like(gam)
        else:
            W = np.broadcast_to(_alpha_variance(family, mu[j], mu[k], gam), gam.shape)
        Ua = z.T @ ((G[j, k] - gam) / W)
        A = z.T @ (z / W[:, None])
        b = {"gaussian": 0.0 * mu, "binomial": 1 / mu - 1 / (1 - mu), "poisson": 1 / mu}[family]
        t = (b[:, None] + 2.0 / r[:, None]) * D
        dab = z.T @ ((gam / 2.0)[:, None] * (t[j] + t[k]) / W[:, None])
        out.append((Ub, F, Ua, A, dab, trace, mu, v0))
    return out


def _decay_start(clusters, family, beta, phi, T):
    """Least squares of the pair products e_k·e_m on α0·ρ^lag over a grid of ρ (0.02..0.98)."""
    prods, lags = [], []
    for per, yc, Xc in clusters:
        mu, _, v0 = _mean(family, Xc @ beta)
        e = (yc - mu) / np.sqrt(v0 * phi)
        j, k = np.triu_indices(len(yc), 1)
        prods.append(e[j] * e[k])
        lags.append(np.abs(per[j] - per[k]))
    z, lag = np.concatenate(prods), np.concatenate(lags)
    best = None
    for rho in np.linspace(0.02, 0.98, 49):
        x = rho**lag
        a0 = (x @ z) / (x @ x)
        rss = ((z - a0 * x) ** 2).sum()
        if best is None or rss < best[0] - 1e-12 * abs(best[0]):
            best = (rss, a0, rho)
    return np.array(best[1:])


def _decay_ok(clusters, family, beta, alpha, phi, naive, T):
    """ρ in [0, 1], pair correlations within their bounds (Prentice's for binary), and each
    cluster's dense V and V − Ω positive definite."""
    if not 0.0 <= alpha[1] <= 1.0:
        return False
    a, B = working_structure("exponential_decay", alpha, T)[:2]
    for per, _, X in clusters:
        mu, g, v0 = _mean(family, X @ beta)
        sd = np.sqrt(v0 * phi)
        gamma = np.where(per[:, None] == per[None, :], a, B[per[:, None], per[None, :]])
        off = ~np.eye(len(per), dtype=bool)
        if family == "binomial":
            odds = mu / (1 - mu)
            oj, ol = odds[:, None], odds[None, :]
            hi = np.minimum(np.sqrt(oj / ol), np.sqrt(ol / oj))
            lo = np.maximum(-np.sqrt(oj * ol), -1.0 / np.sqrt(oj * ol))
            if ((gamma > hi) | (gamma < lo))[off].any():
                return False
        elif (np.abs(gamma) > 1)[off].any():
            return False
        V = sd[:, None] * np.where(off, gamma, 1.0) * sd[None, :]
        D = g[:, None] * X
        for m in (V, V - D @ naive @ D.T):
            if np.linalg.eigvalsh(m)[0] <= 0:
                return False
    return True


def _decay_step(clusters, family, method, beta, alpha, dal, phi, F, T, symmetric, tol):
    """Halve the α step until admissible and, unless already within tol, until the next
    Fisher step Uᵀ A⁻¹ U is shorter (else the largest admissible step)."""
    naive = np.linalg.inv(F)

    def merit(al):
        if not _decay_ok(clusters, family, beta, al, phi, naive, T):
            return None
        pcs = _pieces(clusters, family, "exponential_decay", method, beta, al, phi, naive, T,
                      symmetric)  # fmt: skip
        U, A = sum(c[2] for c in pcs), sum(c[3] for c in pcs)
        return U @ np.linalg.solve(A, U)

    m0, small, first = merit(alpha), np.abs(dal).max() <= tol, None
    for _ in range(31):
        m = merit(alpha + dal)
        if m is not None and (small or m0 is None or m < m0):
            return dal
        if m is not None and first is None:
            first = dal
        dal = dal / 2.0
    if first is None:
        raise RuntimeError("oracle: no admissible decay step")
    return first


def oracle_fit(cluster, period, y, X, family, correlation, method, tol, symmetric=False):
    """β, α, φ and the MB/BC0–BC3/CR2 covariances, as fit_gee computes them."""
    T = int(period.max()) + 1
    clusters = _clusters(cluster, period, y, X)
    N, p = len(y), X.shape[1]
    q = len(working_structure(correlation, np.zeros(2), T)[2])
    Xa, ya = np.concatenate([c[2] for c in clusters]), np.concatenate([c[1] for c in clusters])
    if family == "gaussian":
        beta = np.linalg.lstsq(Xa, ya, rcond=None)[0]
        phi = float(((ya - Xa @ beta) ** 2).sum() / (N - p))
        info = Xa.T @ Xa / phi
    else:
        beta, phi = (
            np.linalg.lstsq(Xa, 2 * ya - 1 if family == "binomial" else ya, rcond=None)[0],
            1.0,
        )
        for _ in range(2):
            mu, g, _ = _mean(family, Xa @ beta)
            info = Xa.T @ (g[:, None] * Xa)
            beta = beta + np.linalg.solve(info, Xa.T @ (ya - mu))
    alpha = np.full(q, 0.01)
    if correlation == "exponential_decay":
        alpha = _decay_start(clusters, family, beta, phi, T)
    step, it = np.inf, 0
    while step > tol:
        it += 1
        if it > 5000:
            raise RuntimeError("oracle did not converge")
        pcs = _pieces(clusters, family, correlation, method, beta, alpha, phi,
                      np.linalg.inv(info), T, symmetric)  # fmt: skip
        F = sum(c[1] for c in pcs)
        db = np.linalg.solve(F, sum(c[0] for c in pcs))
        dal = np.linalg.solve(sum(c[3] for c in pcs), sum(c[2] for c in pcs)) if q else np.zeros(0)
        step = np.abs(np.concatenate([db, dal])).max()
        beta, info = beta + db, F
        if correlation == "exponential_decay":
            dal = _decay_step(clusters, family, method, beta, alpha, dal, phi, F, T, symmetric, tol)
        alpha = alpha + dal
        if method == "moment":  # geepack: Σ (y − μ)²/v(μ) / N in every family
            mu, _, v0 = _mean(family, Xa @ beta)
            phi = float(((ya - mu) ** 2 / v0).sum() / N)
        elif family == "gaussian":
            pcs = _pieces(clusters, family, correlation, "maee", beta, alpha, phi,
                          np.linalg.inv(F), T, symmetric)  # fmt: skip
            phi = phi * sum(c[5] for c in pcs) / (N - p)
    Nb = np.linalg.inv(sum(c[1] for c in _pieces(
        clusters, family, correlation, method, beta, alpha, phi, np.linalg.inv(info), T, symmetric
    )))  # fmt: skip
    pcs = _pieces(clusters, family, correlation, method, beta, alpha, phi, Nb, T, symmetric)
    Na = np.linalg.inv(sum(c[3] for c in pcs)) if q else np.zeros((0, 0))
    bread = np.zeros((p + q, p + q))
    bread[:p, :p], bread[p:, p:] = Nb, Na
    bread[p:, :p] = -Na @ sum(c[4] for c in pcs) @ Nb
    full = np.zeros((p + q, p + q))
    full[:p, :p], full[p:, p:] = Nb, Na
    meats = dict.fromkeys(("BC0", "BC1", "BC2", "BC3"), 0.0)
    for Ub, F, Ua, A, *_ in pcs:
        Ui = np.concatenate([Ub, Ua])
        Ic = np.zeros((p + q, p + q))
        Ic[:p, :p], Ic[p:, p:] = F, A
        H = Ic @ full  # cluster leverage, block diagonal
        Uc = np.linalg.solve(np.eye(p + q) - H, Ui)
        h = 1.0 / np.sqrt(1.0 - np.minimum(FG_CAP, np.diag(H)))
        meats["BC0"] = meats["BC0"] + np.outer(Ui, Ui)
        meats["BC1"] = meats["BC1"] + (np.outer(Uc, Ui) + np.outer(Ui, Uc)) / 2.0
        meats["BC2"] = meats["BC2"] + np.outer(Uc, Uc)
        meats["BC3"] = meats["BC3"] + np.outer(h * Ui, h * Ui)
    vcov = {"MB": Nb} | {k: bread @ m @ bread.T for k, m in meats.items()}
    vcov["CR2"] = _dense_cr2(clusters, family, correlation, beta, alpha, phi, T)
    return beta, alpha, phi, vcov


def _dense_cr2(clusters, family, correlation, beta, alpha, phi, T):
    """clubSandwich's CR2 with the working covariance as target, on individuals: C the upper
    Cholesky factor of V_i, G_i = C(V_i − D_i N D_iᵀ)Cᵀ, A_i = Cᵀ G_i^{-1/2} C."""
    a, B = working_structure(correlation, alpha, T)[:2]
    parts = []
    for per, y, X in clusters:
        mu, g, v0 = _mean(family, X @ beta)
        sd = np.sqrt(v0 * phi)
        same = per[:, None] == per[None, :]
        R = np.where(np.eye(len(y), dtype=bool), 1.0, np.where(same, a, B[per[:, None], per]))
        V = sd[:, None] * R * sd[None, :]
        parts.append((V, g[:, None] * X, y - mu))
    N = np.linalg.inv(sum(D.T @ np.linalg.solve(V, D) for V, D, _ in parts))
    meat = 0.0
    for V, D, r in parts:
        C = np.linalg.cholesky(V).T
        w, u = np.linalg.eigh(C @ (V - D @ N @ D.T) @ C.T)
        A = C.T @ (u / np.sqrt(w)) @ u.T @ C
        e = D.T @ np.linalg.solve(V, A @ r)
        meat = meat + np.outer(e, e)
    return N @ meat @ N
