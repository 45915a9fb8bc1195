"""The worker process (`shoptalk worker`, `python -m api.workers`) and what each part gives it: outbox handlers
(`outbox_handlers(settings, database)`) and periodic jobs (`periodic_jobs(settings, database)`), gathered by
`api.workers.process.collect`."""
