"""Pure logic, no services: the status table, parameter schemas, seq ordering, client queues, the dashboard's JS modules."""
