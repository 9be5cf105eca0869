"""Split-half reliability, encoding noise ceiling and RSA noise ceiling against references."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy.stats import pearsonr, rankdata, spearmanr

from facebrain.brain import rsa_noise_ceiling, split_half_reliability, voxel_noise_ceiling
from facebrain.errors import DataFormatError


def _resp(values):
    s, r, v = values.shape
    return xr.DataArray(values, dims=("stimulus", "repeat", "voxel"),
                        coords={"stimulus": [f"s{i}" for i in range(s)], "repeat": np.arange(r),
                                "voxel": np.arange(v)})


def test_split_half_matches_naive_loop(rng):
    b = rng.standard_normal((30, 5, 9)) + rng.standard_normal((30, 1, 9))
    b[3, 4, :] = np.nan  # a missing repeat
    got = split_half_reliability(_resp(b)).values
    for v in range(9):
        odd = np.nanmean(b[:, 0::2, v], axis=1)
        even = np.nanmean(b[:, 1::2, v], axis=1)
        r = pearsonr(odd, even)[0]
        assert got[v] == pytest.approx(2 * r / (1 + r), rel=1e-10)


def test_noise_ceiling_recovers_known_value_and_matches_loop(rng):
    n_stim, n_rep, n_vox = 3000, 4, 20
    sig_s, sig_n = 1.0, 2.0
    mu = sig_s * rng.standard_normal((n_stim, 1, n_vox))
    b = mu + sig_n * rng.standard_normal((n_stim, n_rep, n_vox))
    nc = voxel_noise_ceiling(_resp(b)).values
    truth = sig_s**2 / (sig_s**2 + sig_n**2 / n_rep)  # 0.5
    assert abs(nc.mean() - truth) < 0.02
    # hand-written loop of the documented formula
    for v in range(3):
        x = b[:, :, v]
        s2n = np.mean([np.var(row, ddof=1) for row in x])
        s2s = max(np.var(x.mean(axis=1), ddof=1) - s2n / n_rep, 0)
        assert nc[v] == pytest.approx(s2s / (s2s + s2n / n_rep), rel=1e-10)
    # pure noise -> ceiling near 0; single-repeat input is an error
    noise = voxel_noise_ceiling(_resp(rng.standard_normal((500, 2, 30)))).values
    assert noise.mean() < 0.1 and (noise >= 0).all()
    with pytest.raises(DataFormatError, match="at least 2 repeats"):
        voxel_noise_ceiling(_resp(b[:, :1]))
    with pytest.raises(DataFormatError, match="'repeat' dim"):
        split_half_reliability(_resp(b).isel(repeat=0))


def _rdms(rng, n_sub=5, n_cond=12, noise=1.0):
    import rsatoolbox

    common = rng.random(n_cond * (n_cond - 1) // 2)
    vecs = common[None] + noise * rng.random((n_sub, common.size))
    return rsatoolbox.rdm.RDMs(vecs, dissimilarity_measure="euclidean",
                               rdm_descriptors={"subject": [f"s{i}" for i in range(n_sub)]})


@pytest.mark.parametrize("method", ["spearman", "corr", "cosine"])
def test_rsa_ceiling_matches_rsatoolbox(rng, method):
    from rsatoolbox.inference import boot_noise_ceiling

    rdms = _rdms(rng)
    lo, hi = rsa_noise_ceiling(rdms, method=method)
    ref_lo, ref_hi = boot_noise_ceiling(rdms, method=method)
    assert lo == pytest.approx(ref_lo, rel=1e-10) and hi == pytest.approx(ref_hi, rel=1e-10)
    assert np.isfinite([lo, hi]).all() and lo <= hi


def test_rsa_ceiling_spearman_naive_loop(rng):
    rdms = _rdms(rng, n_sub=4, noise=0.5)
    vec = rdms.get_vectors()
    ranks = np.array([rankdata(v) for v in vec])
    lows, highs = [], []
    for s in range(4):
        others = np.delete(ranks, s, axis=0).mean(axis=0)
        lows.append(spearmanr(others, vec[s])[0])
        highs.append(spearmanr(ranks.mean(axis=0), vec[s])[0])
    lo, _hi, per_lo, per_hi = rsa_noise_ceiling(list(rdms), return_per_subject=True)
    np.testing.assert_allclose(per_lo, lows, rtol=1e-10)
    np.testing.assert_allclose(per_hi, highs, rtol=1e-10)
    assert lo == pytest.approx(np.mean(lows))


def test_rsa_ceiling_bad_input(rng):
    rdms = _rdms(rng, n_sub=2)
    with pytest.raises(ValueError, match="at least 2 subjects"):
        rsa_noise_ceiling(rdms[0])
    with pytest.raises(TypeError, match="rsatoolbox RDMs"):
        rsa_noise_ceiling(np.zeros((2, 3)))
