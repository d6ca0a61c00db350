"""What a worker does with a task: each task type's run, cancel, hand-back, and its log lines."""
