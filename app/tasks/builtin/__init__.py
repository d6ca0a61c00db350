"""The six built-in task types (CSV statistics, e-mail, images, text, summaries, batches) and their helpers."""
