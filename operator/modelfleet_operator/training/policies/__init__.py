"""One module per TrainingJob policy, each a pure decision from observations (JobSet's layout)."""
