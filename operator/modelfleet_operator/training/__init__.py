"""The TrainingJob controller: pure child builders, one module per policy, ordered reconcile steps."""
