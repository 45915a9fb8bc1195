"""`python -m api.workers --lease-seconds 5`: the worker with a chosen outbox lease (see api.workers.process)."""
from api.workers.process import main

main()
