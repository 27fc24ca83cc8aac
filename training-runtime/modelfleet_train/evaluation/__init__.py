"""Evaluation (`spec.evaluation`): the held-out loss while training, and scores of the final model."""
