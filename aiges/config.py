"""aiges.toml (upstream-compatible keys, SPEC 7) into one Config; flags override it."""
from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from aiges import schema as engine_schema


class ConfigError(Exception):
    pass


@dataclass
class Config:
    service: str = "svcName"
    host: str = "0.0.0.0"
    port: int = 1888
    async_mode: bool = False
    realtime_rlt: bool = True
    header_pass: list[str] = field(default_factory=list)
    wrapper: dict[str, str] = field(default_factory=dict)
    instances: int = 10
    session_ttl_ms: int = 15000
    queue_limit: int = 1024
    wait_ms: int = 3000
    once_timeout_ms: int = 30000
    drain_timeout_ms: int = 10000
    inline_max_us: int = 250  # [aiges] inlineMaxUs: engine calls this fast run on the loop
    max_body: int = 64 * 1024 * 1024
    fast_http: bool = True  # [aiges] fastHttp: once requests skip aiohttp's web layer
    http_head_timeout_s: float = 10.0   # [http] headTimeout: a head must arrive within it
    http_body_timeout_s: float = 30.0   # [http] bodyTimeout: longest pause inside a body
    http_keepalive_s: float = 75.0      # [http] keepAlive: idle keep-alive connections close
    max_connections: int = 0            # [http] maxConnections: 0 = the fd limit less a margin
    ws_read_timeout_s: float = 30.0
    ws_session_timeout_s: float = 600.0
    ws_max_frame: int = 16 * 1024 * 1024   # [ws] maxFrame: bytes of one WebSocket frame
    # [fc] maxSessions: None = [fc] max - 1 when the engine also serves one-shot requests;
    # 0 = bounded by [fc] max only
    max_sessions: int | None = None
    read_wait_ms: int = 5000  # [aiges] readWait: longest silence after a session's last input
    log_level: str = "info"  # a logging level's name, lower case
    log_file: str = ""
    python_plugin_cmd: str = ""  # [aiges] pythonPluginCmd: upstream's, never run here
    access_log: bool = True
    workers: int = 1          # worker processes on one port (SO_REUSEPORT); 1 = no supervisor
    gpus: list[str] = field(default_factory=list)  # CUDA_VISIBLE_DEVICES per worker, round-robin
    worker_stall_s: float = 10.0  # [aiges] workerStallS: a worker's loop silent this long is replaced
    admin_reload: bool = False  # POST /admin/reload may replace the engine (hot reload)
    admin_token: str = ""       # [aiges] adminToken: X-Aiges-Admin-Token the admin routes want
    health_detail: bool = False  # [aiges] healthDetail: /health names the engine's full path
    health_interval_s: float = 5.0  # [aiges] healthIntervalS: wrapperHealth polls; 0 = never
    schema: engine_schema.EngineSchema | None = None  # [schema]: inputs/params/outputs
    ray: dict = field(default_factory=dict)  # [ray]: Ray Serve options, read by aiges.ray
    batch_max_size: int = 1      # [batch] maxSize: once requests per engine call; 1 = off
    batch_max_delay_ms: int = 0  # [batch] maxDelayMs: how long a batch may wait to fill
    grpc_port: int = 0           # [grpc] port: the Open Inference Protocol over gRPC; 0 = off
    warnings: list[str] = field(default_factory=list)


def _flag(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _header_pass(value) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    return [v.strip() for v in str(value).replace(",", ";").split(";") if v.strip()]


# Upstream's (xsf) level names as well as Python's: warn, fatal.
LOG_LEVELS = {"debug": "debug", "info": "info", "warn": "warning", "warning": "warning",
              "error": "error", "fatal": "critical", "critical": "critical"}


def log_level(value) -> str:
    """A [log] level or --log-level as a logging level's name, in lower case."""
    if not isinstance(value, str) or value.strip().lower() not in LOG_LEVELS:
        raise ValueError(value)
    return LOG_LEVELS[value.strip().lower()]


def _workers(value) -> int:
    if isinstance(value, bool) or int(value) < 1:
        raise ValueError(value)
    return int(value)


MAX_BATCH = 4096


def _batch_size(value) -> int:
    if isinstance(value, bool) or not 1 <= int(value) <= MAX_BATCH:
        raise ValueError(value)
    return int(value)


def _millis(value) -> int:
    if isinstance(value, bool) or int(value) < 0:
        raise ValueError(value)
    return int(value)


def _seconds(value) -> float:
    if isinstance(value, bool) or float(value) < 0:
        raise ValueError(value)
    return float(value)


def _port(value) -> int:
    if isinstance(value, bool) or not 0 <= int(value) <= 65535:
        raise ValueError(value)
    return int(value)


def gpu_list(value) -> list[str]:
    """Text ("0,1") or a TOML array ([0, 1]) as ["0", "1"]."""
    items = value if isinstance(value, list) else str(value).split(",")
    return [str(v).strip() for v in items if str(v).strip()]


# (section, key) -> (Config field, converter). "*" stands for the service's own section.
KEYS = {
    ("aiges", "asyncMode"): ("async_mode", _flag),
    ("aiges", "realTimeRlt"): ("realtime_rlt", _flag),
    ("aiges", "headerPass"): ("header_pass", _header_pass),
    ("aiges", "onceTimeout"): ("once_timeout_ms", int),
    ("aiges", "drainTimeout"): ("drain_timeout_ms", int),
    ("aiges", "inlineMaxUs"): ("inline_max_us", int),
    ("aiges", "maxBody"): ("max_body", int),
    ("aiges", "fastHttp"): ("fast_http", _flag),
    ("aiges", "accessLog"): ("access_log", _flag),
    ("aiges", "workers"): ("workers", _workers),
    ("aiges", "gpus"): ("gpus", gpu_list),
    ("aiges", "workerStallS"): ("worker_stall_s", float),
    ("aiges", "adminReload"): ("admin_reload", _flag),
    ("aiges", "adminToken"): ("admin_token", str),
    ("aiges", "healthDetail"): ("health_detail", _flag),
    ("aiges", "healthIntervalS"): ("health_interval_s", _seconds),
    ("aiges", "readWait"): ("read_wait_ms", int),
    ("fc", "max"): ("instances", int),
    ("fc", "ttl"): ("session_ttl_ms", int),
    ("fc", "queue"): ("queue_limit", int),
    ("fc", "wait"): ("wait_ms", int),
    ("http", "headTimeout"): ("http_head_timeout_s", float),
    ("http", "bodyTimeout"): ("http_body_timeout_s", float),
    ("http", "keepAlive"): ("http_keepalive_s", float),
    ("http", "maxConnections"): ("max_connections", int),
    ("ws", "readTimeout"): ("ws_read_timeout_s", float),
    ("ws", "sessionTimeout"): ("ws_session_timeout_s", float),
    ("ws", "maxFrame"): ("ws_max_frame", int),
    ("fc", "maxSessions"): ("max_sessions", int),
    ("batch", "maxSize"): ("batch_max_size", _batch_size),
    ("batch", "maxDelayMs"): ("batch_max_delay_ms", _millis),
    ("grpc", "port"): ("grpc_port", _port),
    ("log", "level"): ("log_level", log_level),
    ("log", "file"): ("log_file", str),
    ("aiges", "pythonPluginCmd"): ("python_plugin_cmd", str),
}
# Known keys without a setting of their own: usrCfg is read at the end of load(); upstream's
# sessMode chose between POST and WebSocket on the service's route, both always served here.
ACCEPTED = {("aiges", "sessMode"), ("aiges", "usrCfg")}
KNOWN_SECTIONS = {section for section, _ in KEYS} | {"wrapper", "schema", "ray"}


def wrapper_text(value) -> str:
    """TOML values as the text wrapperInit receives (true, not True; 16000, not 16000.0)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def flatten(tree: dict, prefix: str = "") -> dict[str, str]:
    pairs: dict[str, str] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            pairs.update(flatten(value, f"{prefix}{key}."))
        else:
            pairs[f"{prefix}{key}"] = wrapper_text(value)
    return pairs


def _read_toml(path: Path) -> dict:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc


def _listen(config: Config, value: str) -> None:
    host, _, port = str(value).rpartition(":")
    try:
        config.port = int(port)
    except ValueError:
        raise ConfigError(f"http_listen must be host:port, got {value!r}") from None
    config.host = host.strip("[]") or config.host


def _schema(table: dict, path: Path) -> engine_schema.EngineSchema:
    try:
        return engine_schema.parse(table, path.parent)
    except engine_schema.SchemaError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def load(path: str | Path | None, service: str = "svcName") -> Config:
    """The config of ``path`` (None: built-in defaults) for ``service``."""
    config = Config(service=service)
    if path is None:
        return config
    path = Path(path)
    tree = _read_toml(path)
    unknown = []
    for section, table in tree.items():
        if not isinstance(table, dict):
            unknown.append(section)
            continue
        if section not in KNOWN_SECTIONS and section != service:
            unknown.append(f"{section}.*")  # upstream's xsf sections ([elog], [lbv2], ...)
            continue
        if section == "schema":
            config.schema = _schema(table, path)
            continue
        if section == "ray":  # checked by aiges.ray.options, only when --ray is used
            config.ray = dict(table)
            continue
        if section == "wrapper":
            config.wrapper = {k: wrapper_text(v) for k, v in table.items() if not isinstance(v, dict)}
        for key, value in table.items():
            if key == "http_listen" and section in ("wrapper", service):
                _listen(config, value)
            elif (section, key) in KEYS:
                name, convert = KEYS[section, key]
                try:
                    setattr(config, name, convert(value))
                except (TypeError, ValueError):
                    raise ConfigError(f"[{section}] {key} = {value!r} is not valid") from None
            elif section not in ("wrapper", service) and (section, key) not in ACCEPTED:
                unknown.append(f"{section}.{key}")
    aiges = tree.get("aiges")
    usr_cfg = aiges.get("usrCfg") if isinstance(aiges, dict) else None
    if usr_cfg:
        config.wrapper = flatten(_read_toml(path.parent / usr_cfg))
    if unknown:
        config.warnings.append(f"ignored unknown keys in {path}: {', '.join(unknown)}")
    return config


def override(config: Config, **flags) -> Config:
    """Flags given on the command line (None = not given) replace file values."""
    return dataclasses.replace(config, **{k: v for k, v in flags.items() if v is not None})


DEFAULT_TOML = '''\
# aiges.toml -- configuration of aiges-load (keys compatible with the upstream AIGES loader).
# Command-line flags override these values. Unknown keys are ignored with a warning.

[aiges]
# true: one-shot requests use wrapperExecAsync and wait for the callback.
asyncMode = false
# Sessions: true reads results after every write, false only after the last input.
realTimeRlt = true
# Request header keys copied into the engine's params, separated by ';'.
headerPass = ""
# A TOML file whose sections flatten to "section.key" pairs for wrapperInit,
# replacing [wrapper] below.
# usrCfg = "engine.toml"
# One-shot request time limit in ms (10102 / HTTP 504 when exceeded).
onceTimeout = 30000
# On SIGTERM/SIGINT: ms to finish in-flight requests and sessions before wrapperFini.
# The process exits at most a few seconds later whatever the engine does: calls that
# never return are logged and left behind (exit code 1).
drainTimeout = 10000
# Sessions of engines that are read (asyncMode = false): after the last input the
# loader reads until a final result (status End/Once); a session whose engine gives
# no result for this many ms ends with 10114 (upstream gives up after 100 x 50 ms).
readWait = 5000
# Engine calls (exec, write, read, ...) measured to take at most this many
# microseconds run on the event loop's thread: handing them to an engine thread
# would cost more than the call. Two slower calls in a row send them back to the
# threads. An inline call cannot be timed out: 0 (always on the threads) for an
# engine that may hang after a run of fast calls.
inlineMaxUs = 250
# Largest request body in bytes (HTTP 413 above it).
maxBody = 67108864
# One-shot requests (POST /v1/<service>, HTTP/1.1 with a Content-Length) are read
# and answered by aiges's own HTTP/1.1 code, skipping aiohttp's web layer, which
# costs more than the rest of a small request; every other request, and anything
# unusual (chunked, Expect, HTTP/1.0), goes to aiohttp. false: aiohttp reads all.
fastHttp = true
# One JSON log line per once request (sid, route, mode, code, latency_ms) and per
# session at its end (sid, frames, code, duration_ms); false for benchmarks.
accessLog = true
# Worker processes, each with its own engine, serving one port (SO_REUSEPORT) under a
# supervisor that restarts a worker that dies. 1 = one process, no supervisor.
workers = 1
# With workers: a worker whose event loop has not run for this many seconds (an engine
# call hung on it) is logged with the calls it was running, killed and replaced.
# 0: never.
workerStallS = 10
# GPU ids handed out round-robin, one per worker, as CUDA_VISIBLE_DEVICES ("0,1").
# "" leaves CUDA_VISIBLE_DEVICES as it is.
gpus = ""
# Hot reload: SIGHUP (to the supervisor with workers) loads the engine again from its
# path, so a new build put there replaces the running one without downtime: new
# requests and sessions go to the new engine at once, the old one finishes its work
# within drainTimeout, then wrapperFini. A new engine that fails to load or to
# initialise is dropped and the old one serves on. true also allows
# POST /admin/reload (body {"engine": "/path/lib.so"} to switch to another file):
# anyone who can reach the port could then load any library on this machine, so
# enable it only where the port is trusted. With workers it reloads the one worker
# that answers; use SIGHUP to reload them all. The admin routes never answer
# cross-origin requests (no CORS) and want Content-Type: application/json.
adminReload = false
# A shared secret the admin routes then want in the X-Aiges-Admin-Token header.
adminToken = ""
# true: GET /health names the engine's full path (else only its file name).
healthDetail = false
# Engines that export wrapperHealth (Python: override WrapperBase.wrapperHealth) are
# asked every this many seconds, off the event loop, whether they still work (a CUDA
# error, say); while they answer no, GET /ready is 503 with the engine's reason, so
# that orchestrators stop routing here. /health (liveness) stays 200. 0: never.
healthIntervalS = 5

[fc]
# Engine instances: how many requests or sessions run at once.
max = 10
# Idle sessions are destroyed after this many ms.
ttl = 15000
# Requests allowed to wait for a free instance; more get 10110 / HTTP 429 at once.
queue = 1024
# How long a request waits for a free instance, in ms, before 10110 / HTTP 429.
wait = 3000
# Streaming sessions open at once (each holds an instance for its life); more get
# 10110 (HTTP 429, or an error frame) at once. Unset: max - 1 when the engine also
# serves one-shot requests (one instance always left for them), else max.
# 0 = only [fc] max bounds them.
# maxSessions = 9

[http]
# Slow clients, on every connection (the fast path's and aiohttp's alike): a request
# head must arrive within headTimeout seconds of its first byte, a body may pause at
# most bodyTimeout seconds, an idle keep-alive connection closes after keepAlive
# seconds. Such connections are closed (and logged, at most once a minute).
headTimeout = 10
bodyTimeout = 30
keepAlive = 75
# Open connections at most; more get a quick 503 and close (a warning, at most once a
# minute). 0: the open-file limit (ulimit -n) less 128, kept for engines and logs.
maxConnections = 0

[ws]
# Seconds a WebSocket may stay silent, and the longest a session may last (WebSocket
# and HTTP sessions alike: 10114 when it runs out).
readTimeout = 30
sessionTimeout = 600
# Largest WebSocket frame in bytes: a bigger one gets an error frame (10009) and a
# close (1009); the service keeps serving. Never more than [aiges] maxBody.
maxFrame = 16777216

[batch]
# Adaptive batching (docs/BATCHING.md), for engines that export wrapperExecBatch (a
# Python wrapper: wrapperOnceExecBatch): concurrent one-shot requests are grouped
# into one engine call of up to maxSize requests. A batch is formed when an instance
# frees: it takes whatever is waiting then, so an idle service adds no latency.
# 1 = off: one request per call, as upstream. Ignored (with a warning) for an engine
# without the batch entry. Requests naming resources (res_id) are never batched.
maxSize = 1
# With maxDelayMs > 0 a batch that is not full also waits up to this many ms after its
# first request for more to join: fuller batches, each request later by at most this.
maxDelayMs = 0

[grpc]
# The Open Inference Protocol (KServe v2, docs/OIP.md) over gRPC on this port, for
# tritonclient.grpc, perf_analyzer -i grpc and KServe. 0 = off. (Over HTTP it is always
# served, under /v2 on the service's own port.)
port = 0

[log]
# debug, info, warning, error (upstream's warn and fatal too).
level = "info"
# Also write JSON log lines to this file ("" = console only); its folder is made.
file = ""

[wrapper]
# Where to listen (may also sit in the [<service>] section).
http_listen = "0.0.0.0:1888"
# Every key of this section is passed to wrapperInit as a config pair (values as text),
# http_listen too, as upstream does.

# [ray] is read only with --ray (docs/DEPLOY.md): the engine served by Ray Serve replicas
# on a Ray cluster. Flags win over these keys.
# [ray]
# address = "auto"             # ray.init(address=...); default RAY_ADDRESS, else a local Ray
# replicas = 1                 # num_replicas (with autoscaling: initial_replicas)
# gpusPerReplica = 0           # ray_actor_options.num_gpus (may be 0.5)
# cpusPerReplica = 1           # ray_actor_options.num_cpus
# resources = { a100 = 1 }     # custom node resources each replica needs
# minReplicas = 1              # autoscaling between minReplicas and maxReplicas (off unset)
# maxReplicas = 4
# targetOngoingRequests = 2    # requests in flight per replica autoscaling aims at
# maxOngoingRequests = 10      # per replica; default [fc] max
# maxReplicasPerNode = 1       # 1 = one replica per machine
# proxyLocation = "EveryNode"  # EveryNode, HeadOnly or Disabled
# healthCheckPeriod = 10       # seconds
# healthCheckTimeout = 30
# deployTimeout = 120          # seconds for every replica to start, else exit 1 naming why

# [schema] describes the engine's inputs, params and outputs for GET /openapi.json and
# the Swagger UI at /docs (whose "Try it out" sends the example request). Without it a
# Python wrapper's requestCls/responseCls fields are used; with neither, any payload key.
# Unknown keys or values of the wrong type stop start-up with an error.
# [schema]
# description = "what the service does"
#
# [schema.inputs.input]        # payload key
# type = "text"                # text | audio | image | video
# encoding = "utf8"            # also: compress, format
# description = "text to echo"
# example = "hello"            # plain text; the document shows it base64-encoded
# # example_file = "test.wav"  # or a file (relative to this one), for binary inputs
# # required = true
# # attrs = { sample_rate = 16000 }   # other desc attributes sent with the input
# # datatype = "BYTES"         # as an Open Inference Protocol tensor (docs/OIP.md): BYTES,
# # shape = [1]                # or UINT8 .. FP64 with a shape (-1: any size); outputs too
#
# [schema.params.lang]
# type = "string"              # string | integer | number | boolean
# enum = ["en", "zh"]          # also: minimum, maximum (numbers), min_length, max_length
# default = "en"
# description = "language"
# # required = false
#
# [schema.outputs.input]       # output key
# type = "text"                # text | audio | image | video
# encoding = "utf8"            # also: compress, format, description
'''
