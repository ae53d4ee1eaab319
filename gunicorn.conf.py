"""gunicorn settings for `make serve` (and the tests and benchmarks that start a real server).

Loopback only unless BIND is set; no control socket (gunicorn 27 would create
one under ~/.gunicorn), so serving writes nothing outside the project. The
workers share their metrics (GET /metrics) through files in the project's
`output_folder_path/prometheus/server-<master pid>`, one per server (drs/multiproc.py).
"""

import os

from drs import multiproc

bind = os.environ.get("BIND", f"127.0.0.1:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("WORKERS", "2"))
worker_class = os.environ.get("WORKER_CLASS", "sync")  # "gthread" (with THREADS) keeps connections alive
threads = int(os.environ.get("THREADS", "1"))
timeout = 60
graceful_timeout = 10
control_socket_disable = True
# the workers' heartbeat files (unlinked at once) in memory rather than the system's temp folder
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
accesslog = os.environ.get("ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")


def on_starting(server):
    """In the master, before any worker: prometheus-client reads PROMETHEUS_MULTIPROC_DIR when a worker first imports it."""
    server.log.info("%s", multiproc.prepare(os.environ.get("DRS_CONFIG")))


def child_exit(server, worker):
    multiproc.worker_exited(worker.pid)
