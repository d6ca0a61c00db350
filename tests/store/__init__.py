"""The stores on SQLite and PostgreSQL: guarded moves, seqs, counts, pages, text search."""
