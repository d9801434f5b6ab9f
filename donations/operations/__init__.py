"""Running the app in production: the one worker process, its schedules, the ledger's own
checks, logs and metrics. Above every area: it calls each one's services."""
