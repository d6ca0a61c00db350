"""Persistence: the schema, the `databases` backends, one store per table family, search and filters; files on disk."""
