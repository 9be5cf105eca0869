"""Linear heads fitted on cached (frozen) features, and the per-fold pipeline."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.validation import check_is_fitted

from .._boundary import public
from ..errors import ParameterError, ParameterTypeError

__all__ = [
    "HEADS", "TorchLinearClassifier", "blas_threads_for", "make_head", "make_probe_pipeline",
]

#: below this many matrix elements, fits run with one BLAS thread: threading
#: only adds synchronisation cost there (10-30x slower on a busy 2-core machine)
SMALL_PROBLEM = 2_000_000


def blas_threads_for(X):
    """Context manager limiting BLAS to one thread for small ``X`` (a no-op otherwise)."""
    from contextlib import nullcontext

    from threadpoolctl import threadpool_limits

    if np.prod(np.shape(X)) < SMALL_PROBLEM:
        return threadpool_limits(limits=1, user_api="blas")
    return nullcontext()


@public
class TorchLinearClassifier(ClassifierMixin, BaseEstimator):
    """A torch ``nn.Linear`` layer trained with cross-entropy: the poster's "new FC layer".

    It is fitted on cached features (never by re-running the backbone).

    Parameters
    ----------
    optimizer : {"lbfgs", "adam"}
        ``"lbfgs"``: full-batch L-BFGS with strong-Wolfe line search;
        ``"adam"``: minibatch Adam for ``epochs`` epochs.
    max_iter : int
        L-BFGS iterations.
    epochs : int
        Adam epochs.
    batch_size : int
        Adam minibatch size.
    lr : float
        Adam learning rate.
    alpha : float
        L2 penalty on the weights (added to the mean cross-entropy as ``alpha/2 ||W||^2``).
    seed : int
        Seeds the initial weights and the minibatch order.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((30, 5))
    >>> y = np.repeat(["a", "b", "c"], 10)
    >>> clf = TorchLinearClassifier(seed=0).fit(X, y)
    >>> clf.predict_proba(X).shape
    (30, 3)
    """

    def __init__(self, *, optimizer: str = "lbfgs", max_iter: int = 200, epochs: int = 50,
                 batch_size: int = 128, lr: float = 1e-2, alpha: float = 1e-4, seed: int = 0):
        self.optimizer = optimizer
        self.max_iter = max_iter
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.alpha = alpha
        self.seed = seed

    def fit(self, X, y):
        import torch
        from sklearn.utils.multiclass import check_classification_targets
        from sklearn.utils.validation import validate_data

        X, y = validate_data(self, X, y, dtype=np.float32)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ParameterError(
                f"need at least 2 classes to fit; got {len(self.classes_)} class: "
                f"{self.classes_.tolist()}"
            )
        if self.optimizer not in ("lbfgs", "adam"):
            raise ParameterError(f"optimizer must be 'lbfgs' or 'adam'; got {self.optimizer!r}")
        gen = torch.Generator().manual_seed(int(self.seed))
        n, d = X.shape
        k = len(self.classes_)
        bound = 1.0 / np.sqrt(d)
        W = ((torch.rand(k, d, generator=gen) * 2 - 1) * bound).requires_grad_(True)
        b = ((torch.rand(k, generator=gen) * 2 - 1) * bound).requires_grad_(True)
        Xt = torch.from_numpy(np.ascontiguousarray(X))
        yt = torch.from_numpy(codes.astype(np.int64))
        alpha = float(self.alpha)

        def loss_of(xb, yb):
            logits = xb @ W.T + b
            return torch.nn.functional.cross_entropy(logits, yb) + 0.5 * alpha * (W * W).sum()

        # minibatch steps (and small full-batch problems) are tiny ops for which torch's
        # intra-op threads cost far more than they give (45x slower with 2 busy threads)
        small = self.optimizer == "adam" or n * d < SMALL_PROBLEM
        n_threads = torch.get_num_threads()
        if small:
            torch.set_num_threads(1)
        try:
            self._optimise(torch, W, b, Xt, yt, loss_of, gen, n)
        finally:
            torch.set_num_threads(n_threads)
        self.coef_ = W.detach().numpy().astype(np.float64)
        self.intercept_ = b.detach().numpy().astype(np.float64)
        return self

    def _optimise(self, torch, W, b, Xt, yt, loss_of, gen, n) -> None:
        with torch.enable_grad():
            if self.optimizer == "lbfgs":
                opt = torch.optim.LBFGS([W, b], lr=1.0, max_iter=int(self.max_iter),
                                        history_size=20, line_search_fn="strong_wolfe",
                                        tolerance_grad=1e-6, tolerance_change=1e-9)

                def closure():
                    opt.zero_grad()
                    loss = loss_of(Xt, yt)
                    loss.backward()
                    return loss

                opt.step(closure)
                self.n_iter_ = np.array([opt.state[opt._params[0]].get("n_iter", 0)])
            else:
                opt = torch.optim.Adam([W, b], lr=float(self.lr))
                bs = int(self.batch_size)
                for _ in range(int(self.epochs)):
                    perm = torch.randperm(n, generator=gen)
                    for a in range(0, n, bs):
                        idx = perm[a:a + bs]
                        opt.zero_grad()
                        loss = loss_of(Xt[idx], yt[idx])
                        loss.backward()
                        opt.step()
                self.n_iter_ = np.array([int(self.epochs)])

    def _logits(self, X) -> np.ndarray:
        from sklearn.utils.validation import validate_data

        check_is_fitted(self, ["coef_", "intercept_"])
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return X @ self.coef_.T + self.intercept_

    def decision_function(self, X):
        """Logits (n_samples, n_classes); for 2 classes the scikit-learn 1-D score."""
        z = self._logits(X)
        return z[:, 1] - z[:, 0] if z.shape[1] == 2 else z

    def predict_proba(self, X):
        z = self._logits(X)
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, X):
        z = self._logits(X)
        return self.classes_[np.argmax(z, axis=1)]


def _logistic(seed: int, **kw):
    from sklearn.linear_model import LogisticRegression

    kw.setdefault("max_iter", 1000)
    return LogisticRegression(random_state=seed, **kw)  # multinomial lbfgs by default


def _fc(seed: int, **kw):
    return TorchLinearClassifier(seed=seed, **kw)


def _ridge(seed: int, **kw):
    from sklearn.linear_model import RidgeClassifier

    return RidgeClassifier(**kw)  # closed form: no randomness; permutations share its solve


#: head name -> builder(seed, **head_kw)
HEADS = {"fc": _fc, "logistic": _logistic, "ridge": _ridge}


def make_head(head, *, seed: int = 0, head_kw: dict | None = None):
    """An unfitted head: a name from :data:`HEADS` or a scikit-learn classifier (cloned)."""
    if isinstance(head, str):
        if head not in HEADS:
            raise ParameterError(f"unknown head {head!r}; use one of {sorted(HEADS)} or an estimator")
        return HEADS[head](seed, **(head_kw or {}))
    if hasattr(head, "fit") and hasattr(head, "predict"):
        if head_kw:
            raise ParameterError("head_kw only applies to named heads; set the estimator's params")
        return clone(head)
    raise ParameterTypeError(f"head must be a name or a scikit-learn classifier; got {type(head)}")


@public
def make_probe_pipeline(head, *, standardize: bool = True, reduce: str | None = None,
                        seed: int = 0, head_kw: dict | None = None):
    """``[StandardScaler] -> [PCA / SparseRandomProjection] -> head``, all fitted per fold.

    The estimator :func:`probe` and :func:`fit_head` fit (a scikit-learn ``Pipeline``).
    Called ``make_pipeline`` before facebrain 0.2, a name that shadowed
    :func:`sklearn.pipeline.make_pipeline` with another signature; the old name warns
    until 0.3.

    Parameters
    ----------
    head : str or scikit-learn classifier
        A name in ``HEADS`` (built with ``seed`` and ``head_kw``) or an estimator (cloned).
    standardize : bool
        Z-score every unit first.
    reduce : {"pca:N", "srp:N"}, optional
        PCA or sparse random projection to ``N`` dimensions.
    seed : int
    head_kw : dict, optional
        Keyword arguments of a named head.

    Returns
    -------
    sklearn.pipeline.Pipeline

    Examples
    --------
    >>> [name for name, _ in make_probe_pipeline("logistic", reduce="pca:8").steps]
    ['scale', 'reduce', 'head']
    """
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    steps = []
    if standardize:
        steps.append(("scale", StandardScaler()))
    if reduce is not None:
        kind, _, n = str(reduce).partition(":")
        if kind not in ("pca", "srp") or not n.isdigit() or int(n) < 1:
            raise ParameterError(f"reduce must be 'pca:N' or 'srp:N' (N >= 1); got {reduce!r}")
        if kind == "pca":
            from sklearn.decomposition import PCA

            steps.append(("reduce", PCA(int(n), random_state=seed)))
        else:
            from sklearn.random_projection import SparseRandomProjection

            steps.append(("reduce", SparseRandomProjection(int(n), random_state=seed)))
    steps.append(("head", make_head(head, seed=seed, head_kw=head_kw)))
    return Pipeline(steps)
