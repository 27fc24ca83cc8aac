"""The ModelDeployment controller: serving Deployments per track, Service, PDB, autoscaler, route."""
