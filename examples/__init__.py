"""Examples of using the task queue: each folder is one, with a README saying how to run it."""
