"""A team's own task types, served with `TASK_MODULES=examples.own_tasks.reports make run`."""
