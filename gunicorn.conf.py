"""gunicorn settings for Stockroom; `gunicorn wsgi:app` in this directory reads them.

Threaded workers (gthread) so slow or idle clients do not stall the site: a sync worker
is held for as long as a client takes to send its request, so eight clients trickling
their headers stopped /api/v1/ping on four sync workers (bench/slow_clients.py). A
gthread worker parks idle connections in its poller and accepts only while it has a
free thread (worker_connections = threads), so a worker whose threads are all taken by
slow clients leaves new connections to the others. nginx in front (deploy/nginx) buffers
whole requests and is the real shield; these settings hold when someone skips it.

Override any setting on the command line or in GUNICORN_CMD_ARGS ("--threads 16");
WEB_CONCURRENCY sets the number of workers.
"""
import os
import shutil
import tempfile

_cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1

# A request spends most of its time waiting on PostgreSQL, so several processes per core
# keep the cores busy; more processes also mean more accept queues against slow clients.
# Few threads per process: they share one interpreter lock, and a thread whose query has
# answered waits for it behind the others' Python work. At 32 storefront clients on 2 cores
# 4 workers x 8 threads reserved 206/s, 8 x 4 408/s, the same 32 slots (bench/api.py).
# On 2 cores: 9 workers x 4 threads = 36 requests in progress and at most 36 database
# connections in use (a thread uses one at a time); about 80 MB resident per worker.
workers = int(os.environ.get("WEB_CONCURRENCY", 4 * _cores + 1))
worker_class = "gthread"
threads = 4
worker_connections = threads

timeout = 30  # a worker whose main loop is silent this long is killed and replaced
graceful_timeout = 25  # on SIGTERM, requests in progress get this long (systemd waits 35 s)
# A connection gives its slot back once its answer is sent (with worker_connections =
# threads there is no slot to keep it alive in); nginx keeps the clients' connections.
keepalive = 0
# The longest request line gunicorn allows (nginx's default header buffers are 8 KB too); a
# longer one is a 414 before the app (documented on GET /api/v1/products).
limit_request_line = 8190
max_requests, max_requests_jitter = 10_000, 1_000  # recycle workers, staggered
# gunicornc's socket is one path per user: several gunicorns on a host would take it from
# each other. Signals (HUP, TTIN, TTOU, TERM) do the same work.
control_socket_disable = True

# PROXY_HOPS in the app decides whose X-Forwarded-* headers to believe; gunicorn believes none.
forwarded_allow_ips = ""

# Prometheus counts from every worker are kept in files in one directory, read at /metrics.
_own_metrics_dir = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _own_metrics_dir:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="stockroom-metrics-")
_metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"]
os.makedirs(_metrics_dir, exist_ok=True)

if os.environ.get("LOG_FORMAT", "").strip().lower() == "json":
    # gunicorn's own lines (worker boots, timeouts) in the app's JSON shape too.
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "dashboard.observability.logs.JsonFormatter"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json"}},
        "root": {"level": "INFO", "handlers": []},  # the app adds its JSON handler
        "loggers": {"gunicorn.error": {"handlers": ["stderr"], "level": "INFO",
                                       "propagate": False}},
    }


def on_starting(server):
    """Counts left by an earlier run of the master must not be added to this one's."""
    for name in os.listdir(_metrics_dir):
        if name.endswith(".db"):
            os.unlink(os.path.join(_metrics_dir, name))


def child_exit(server, worker):
    """A dead worker's gauges (connections checked out) stop counting."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _own_metrics_dir:
        shutil.rmtree(_metrics_dir, ignore_errors=True)
