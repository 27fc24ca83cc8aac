"""Pure decisions of the ModelDeployment controller, each in its own module with its own tests."""
