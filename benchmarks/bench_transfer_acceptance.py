"""Acceptance: identity-trained small_resnet -> expression probe on synthetic KDEF.

1. Train ``small_resnet`` for identity on ``synthetic_identities`` (a crawl of
   people never in the probe set); keep an untrained copy (same initial weights).
2. Extract every stage for a ``synthetic_kdef`` subset (both networks, same images);
   spatial stages are reduced with a seeded sparse random projection.
3. Probe expression with leave-identity-out folds (no test identity is ever in
   its training fold; checked) for every layer of both networks.
4. Permutation test over every layer (training labels permuted within folds,
   whole pipeline refitted; the same permutations for every layer), for both
   networks. The best layer is chosen by mean accuracy, so its p is the
   max-statistic ``p_value_fwe`` (corrected for choosing among the layers).
   The head is ``ridge`` by default (its permutations share one solve per fold and
   equal the refits exactly, see bench_permutations.py); ``--head logistic`` refits.

The baseline is the untrained network, printed beside the trained one.
Prints per-layer accuracy +- SEM, chance (test-fold majority rate) and p-values.

Usage: python benchmarks/bench_transfer_acceptance.py [--n-identities 40]
       [--images-per-identity 30] [--epochs 8] [--n-permutations 100] [--threads 2]
"""

from __future__ import annotations

import argparse
import copy
import sys
import time

import torch


def run(*, n_identities=40, images_per_identity=30, epochs=8, width=16, size=64,
        views=("S", "HL", "HR"), sessions=("A",), n_kdef_identities=70, n_folds=10,
        n_permutations=100, srp=256, seed=0, head="ridge", progress=True, log=print) -> dict:
    from facebrain.activations import extract
    from facebrain.models import create
    from facebrain.stimuli import synthetic_identities, synthetic_kdef
    from facebrain.training import fit_classifier
    from facebrain.transfer import probe

    t0 = time.perf_counter()
    train = synthetic_identities(n_identities, images_per_identity, seed=seed + 1,
                                 image_size=size)
    torch.manual_seed(seed)
    net = create("small_resnet", num_classes=n_identities, width=width, input_size=size)
    untrained = copy.deepcopy(net)
    untrained.name = "small_resnet (untrained)"
    fit = fit_classifier(net, train, target="identity", epochs=epochs, seed=seed,
                         progress=progress)
    last = fit.history[-1] if fit.history else {}
    log(f"trained small_resnet(width={width}) for identity on {len(train)} images of "
        f"{n_identities} people, {epochs} epochs: last epoch {last} "
        f"({time.perf_counter() - t0:.0f} s)")
    kdef = synthetic_kdef(seed=seed, image_size=size)
    people = sorted(kdef.table["identity"].unique())[:n_kdef_identities]
    mask = (kdef.table["view"].isin(views) & kdef.table["session"].isin(sessions)
            & kdef.table["identity"].isin(people)).to_numpy()
    kdef = kdef.subset(mask)
    layers = ["conv1", "layer1", "layer2", "layer3", "layer4", "avgpool"]
    reduce = {ly: f"srp:{srp}" for ly in layers[:-1]}
    results = {}
    for tag, model in (("trained", net), ("untrained", untrained)):
        t = time.perf_counter()
        acts = extract(model, kdef, layers, reduce=reduce, batch_size=64, progress=progress,
                       seed=seed)
        res = probe(acts, "expression", cv="leave-identity-out", n_folds=n_folds, seed=seed,
                    n_permutations=n_permutations, head=head)
        ids = acts["identity"].values
        for k in range(res.sizes["fold"]):
            test = res.test_fold.values == k
            if set(ids[test]) & set(ids[~test]):
                raise AssertionError(f"fold {k}: a test identity is in its training fold")
        results[tag] = {"acts": acts, "res": res}
        log(f"{tag}: extracted {len(kdef)} images and probed {len(layers)} layers "
            f"({time.perf_counter() - t:.0f} s)")
    best = str(results["trained"]["res"].attrs["best_layer"])
    for tag in ("trained", "untrained"):
        results[tag]["perm"] = results[tag]["res"].sel(layer=[best])
    chance = float(results["trained"]["res"].chance)
    log(f"\nexpression probe, leave-identity-out ({n_folds} folds), {len(kdef)} synthetic KDEF "
        f"images ({len(people)} people x 7 expressions x views {list(views)}); "
        f"chance (test-fold majority rate) {chance:.3f}")
    log(f"{'layer':>8} | {'trained':>15} | {'untrained':>15}")
    for ly in layers:
        cells = []
        for tag in ("trained", "untrained"):
            r = results[tag]["res"]
            cells.append(f"{float(r.accuracy_mean.sel(layer=ly)):.3f} +- "
                         f"{float(r.accuracy_sem.sel(layer=ly)):.3f}")
        log(f"{ly:>8} | {cells[0]:>15} | {cells[1]:>15}")
    for tag in ("trained", "untrained"):
        p = results[tag]["perm"]
        log(f"{tag} at best layer {best} (argmax of mean accuracy over {len(layers)} layers): "
            f"accuracy {float(p.accuracy_mean[0]):.3f}, permutation p corrected for the "
            f"layer choice = {float(p.p_value_fwe[0]):.4f} (uncorrected "
            f"{float(p.p_value[0]):.4f}, n = {n_permutations}), "
            f"null mean {float(p.null_accuracy.mean()):.3f}")
    results["best_layer"] = best
    results["chance"] = chance
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-identities", type=int, default=40)
    ap.add_argument("--images-per-identity", type=int, default=30)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--views", default="S,HL,HR")
    ap.add_argument("--n-permutations", type=int, default=100)
    ap.add_argument("--n-folds", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--head", default="ridge", choices=["ridge", "logistic", "fc"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    r = run(n_identities=args.n_identities, images_per_identity=args.images_per_identity,
            epochs=args.epochs, width=args.width, size=args.size,
            views=tuple(args.views.split(",")), n_folds=args.n_folds,
            n_permutations=args.n_permutations, head=args.head, progress=False)
    p = float(r["trained"]["perm"].p_value_fwe[0])
    acc = float(r["trained"]["perm"].accuracy_mean[0])
    ok = acc > r["chance"] and p < 0.01
    print(f"acceptance (trained best layer above chance with layer-corrected p < 0.01): "
          f"{'PASS' if ok else 'FAIL'}")
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
