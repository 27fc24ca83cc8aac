"""Optional GPU capacity manager: makes sure an AKS node pool can hold what a resource asks for."""
