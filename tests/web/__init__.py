"""Browser code and static files: the cache rule, the module rule, the components."""
