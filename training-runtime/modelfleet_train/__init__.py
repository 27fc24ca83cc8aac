"""modelfleet's training runtime: what every TrainingJob worker pod runs under torchrun.

`python -m modelfleet_train --config FILE` trains; `validate` checks a config without starting
processes; `prepare` caches a model or dataset for offline use. See training-runtime/README.md.
"""
