"""HTTP routes, thin: they check rights and scope and call the service modules."""
