"""Every move of a task: submit, cancel, retry, bulk actions, removal, a worker's attempts; the changes that write and publish them; arq's jobs."""
