"""gunicorn settings for `make serve` (and the tests and benchmarks that start a real server).

Loopback only unless BIND is set; no control socket (gunicorn 27 would create
one under ~/.gunicorn), so serving writes nothing outside the project. The
workers share their metrics (GET /metrics) through files in the project's
`output_folder_path/prometheus/server-<master pid>`, one per server (drs/web/multiproc.py).

Workers are gevent's (gunicorn's `gevent` class): one greenlet per connection, so idle and slow
clients cost a few kilobytes each, not a worker, up to WORKER_CONNECTIONS per worker; a request head
must arrive whole within KEEPALIVE seconds of the connection opening (or of the previous answer),
else the connection is closed. Measured in bench/slow_clients.py; docs/security.md#slow-and-idle-clients.
"""

import os
import sys

from drs.core.errors import ConfigError
from drs.core.settings import load_config
from drs.web import answers, multiproc, serving

bind = os.environ.get("BIND", f"127.0.0.1:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("WORKERS", "2"))
worker_class = os.environ.get("WORKER_CLASS", "gevent")  # "sync" and "gthread" are held up by idle clients (warned)
worker_connections = int(os.environ.get("WORKER_CONNECTIONS", "1000"))  # per worker; more wait in the listen queue
keepalive = int(os.environ.get("KEEPALIVE", "5"))  # seconds for a whole request head, and between requests on a connection
threads = int(os.environ.get("THREADS", "1"))  # WORKER_CLASS=gthread only
timeout = 60  # the heartbeat: a worker silent this long is restarted (gevent's loop beats every second)
graceful_timeout = 10
control_socket_disable = True
# the workers' heartbeat files (unlinked at once) in memory rather than the system's temp folder
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
accesslog = os.environ.get("ACCESS_LOG") or None
logger_class = "drs.web.accesslog.RedactingLogger"  # no token, password or cookie in the access log
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")
# The longest request line (method, URL, HTTP version) served, gunicorn's default said here: over it a JSON 414 (docs/api.md).
limit_request_line = 4094


def on_starting(server):
    """In the master, before any worker: never open on the network by mistake (drs/web/serving.py; the workers check
    again through DRS_BIND); prometheus-client reads PROMETHEUS_MULTIPROC_DIR when a worker first imports it."""
    binds = list(server.cfg.bind)
    os.environ[serving.BIND_ENV] = ",".join(binds)
    try:
        config = load_config(os.environ.get("DRS_CONFIG") or None)
        refused = serving.refusal(config, binds)
    except ConfigError as exc:
        refused = f"error: {exc}"
    if refused:
        sys.exit(refused)  # the one line on stderr, exit status 1, before anything listens
    if (warning := serving.warning(config)) is not None:
        server.log.warning("%s", warning)
    if (held := serving.slow_client_warning(server.cfg.worker_class_str, server.cfg.keepalive)) is not None:
        server.log.warning("%s", held)
    if (clear := serving.tls_warning(config, binds, tls=bool(server.cfg.certfile))) is not None:
        server.log.warning("%s", clear)  # once, here in the master
    server.log.info("%s", multiproc.prepare(os.environ.get("DRS_CONFIG")))


def child_exit(server, worker):
    multiproc.worker_exited(worker.pid)


def post_worker_init(worker):
    """In each worker, before it serves: gunicorn's own error answers (414, 431, 400) in JSON, like the app's (drs/web/answers.py)."""
    answers.answer_gunicorn_errors_in_json(worker.cfg.limit_request_line)
