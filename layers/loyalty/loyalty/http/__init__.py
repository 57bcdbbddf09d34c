"""HTTP: the shared resolver, identity and roles, request/response models, routes, error mapping."""
