"""Acquisition functions: score candidates from a model's predicted mean and spread.

Every function takes the predicted mean ``mu`` and standard deviation ``sd`` (both in
log10 S/cm), the best value measured so far (``best``) and a random generator, and returns
one score per candidate; higher is better. The names follow Ling et al., Integrating
Materials and Manufacturing Innovation 6, 207 (2017): MEI (maximum expected value, pure
exploitation), MLI (maximum likelihood of improvement), MU (maximum uncertainty, pure
exploration); plus the upper confidence bound, expected improvement and a random baseline.
MLI and EI treat the prediction as Gaussian, ``N(mu, sd**2)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
from scipy.stats import norm

KAPPA = 2.0  # UCB's weight on the spread: about the upper end of a 95 % interval


class Acquisition(Protocol):
    def __call__(
        self,
        mu: np.ndarray,
        sd: np.ndarray,
        best: float,
        rng: np.random.Generator | None = None,
    ) -> np.ndarray: ...


def _arrays(mu: np.ndarray, sd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu = np.asarray(mu, dtype=float)
    sd = np.asarray(sd, dtype=float)
    if mu.shape != sd.shape or mu.ndim != 1:
        raise ValueError(f"mu and sd must be 1-d arrays of one length, got {mu.shape}, {sd.shape}")
    if np.any(~np.isfinite(mu)):
        raise ValueError("mu holds NaN or infinite values")
    if np.any(~np.isfinite(sd)) or np.any(sd < 0):
        raise ValueError("sd must be finite and >= 0")
    return mu, sd


def _best(best: float) -> float:
    best = float(best)
    if not np.isfinite(best):
        raise ValueError(f"best measured value must be finite, got {best}")
    return best


def mei(mu: np.ndarray, sd: np.ndarray, best: float = 0.0, rng=None) -> np.ndarray:
    """Maximum expected value: the predicted mean (pure exploitation)."""
    mu, _ = _arrays(mu, sd)
    return mu.copy()


def mli(mu: np.ndarray, sd: np.ndarray, best: float, rng=None) -> np.ndarray:
    """Maximum likelihood of improvement: P(y > best) under N(mu, sd**2)."""
    mu, sd = _arrays(mu, sd)
    best = _best(best)
    out = (mu > best).astype(float)  # sd == 0: certain
    pos = sd > 0
    out[pos] = norm.cdf((mu[pos] - best) / sd[pos])
    return out


def ucb(
    mu: np.ndarray, sd: np.ndarray, best: float = 0.0, rng=None, kappa: float = KAPPA
) -> np.ndarray:
    """Upper confidence bound: mu + kappa * sd."""
    mu, sd = _arrays(mu, sd)
    return mu + float(kappa) * sd


def ei(mu: np.ndarray, sd: np.ndarray, best: float, rng=None) -> np.ndarray:
    """Expected improvement over ``best``: E[max(y - best, 0)] under N(mu, sd**2)."""
    mu, sd = _arrays(mu, sd)
    best = _best(best)
    gain = mu - best
    out = np.maximum(gain, 0.0)  # sd == 0
    pos = sd > 0
    z = gain[pos] / sd[pos]
    out[pos] = gain[pos] * norm.cdf(z) + sd[pos] * norm.pdf(z)
    return out


def mu_(mu: np.ndarray, sd: np.ndarray, best: float = 0.0, rng=None) -> np.ndarray:
    """Maximum uncertainty: the predicted spread (pure exploration)."""
    _, sd = _arrays(mu, sd)
    return sd.copy()


def random_(mu: np.ndarray, sd: np.ndarray, best: float = 0.0, rng=None) -> np.ndarray:
    """Uniform random scores (the baseline every campaign is compared with)."""
    mu, _ = _arrays(mu, sd)
    gen = rng if rng is not None else np.random.default_rng()
    return gen.random(len(mu))


ACQUISITIONS: dict[str, Callable[..., np.ndarray]] = {
    "mei": mei,
    "mli": mli,
    "ucb": ucb,
    "ei": ei,
    "mu": mu_,
    "random": random_,
}

DESCRIPTIONS: dict[str, str] = {
    "mei": "highest predicted log10 sigma",
    "mli": "highest probability of beating the best measured value",
    "ucb": f"highest upper confidence bound (mean + {KAPPA:g} sd)",
    "ei": "highest expected improvement over the best measured value",
    "mu": "largest model uncertainty",
    "random": "random pick (baseline)",
}

# Acquisitions that need no model: a campaign can skip fitting for them.
MODEL_FREE = frozenset({"random"})


def get_acquisition(name: str) -> Callable[..., np.ndarray]:
    """The acquisition function called ``name``; ``ValueError`` listing the valid names."""
    try:
        return ACQUISITIONS[name]
    except (KeyError, TypeError):
        valid = ", ".join(ACQUISITIONS)
        raise ValueError(f"unknown acquisition function {name!r}; choose one of {valid}") from None


def score(
    name: str,
    mu: np.ndarray,
    sd: np.ndarray,
    best: float,
    rng: np.random.Generator | None = None,
    *,
    kappa: float = KAPPA,
) -> np.ndarray:
    """Scores of acquisition ``name`` (``kappa`` only matters for ``ucb``)."""
    fn = get_acquisition(name)
    if name == "ucb":
        return fn(mu, sd, best, rng, kappa=kappa)
    return fn(mu, sd, best, rng)


def ranking(scores: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """Positions from best to worst score; ties (e.g. probabilities that round to 1) go to
    the higher predicted mean, then to the earlier row."""
    scores = np.asarray(scores, dtype=float)
    mu = np.asarray(mu, dtype=float)
    return np.lexsort((np.arange(len(scores)), -mu, -scores))
