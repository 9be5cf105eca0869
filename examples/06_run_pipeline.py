"""The whole pipeline from Python: the built-in demo, shrunk with overrides.

Same as `facebrain run --out results/example --set stimuli.train.n_identities=10 ...`.
A second call reuses every finished stage; change one setting and only that stage
and the ones after it run again.

    python examples/06_run_pipeline.py
"""

from facebrain.pipeline import load_config, run

small = {
    "stimuli.train.n_identities": 10, "stimuli.train.images_per_identity": 20,
    "stimuli.test.identities": 20, "stimuli.test.views": ["S"],
    "models[0].train.epochs": 2, "models[1].train.epochs": 2,
    "transfer.directions[0].n_permutations": 5, "transfer.directions[1].n_permutations": 5,
    "brain.subjects": 2, "rsa.n_bootstrap": 20,
}
print(load_config(overrides=small).to_yaml()[:400], "...")
result = run(out="results/example", overrides=small)
print(result.statuses)
print("report:", result.report)

again = run(out="results/example", overrides={**small, "rsa.method": "corr"})
print({stage: status for stage, status in again.statuses.items()})  # rsa + report recomputed
