"""`pneumonia-aug bench serve`: a served classifier under concurrent good and bad requests.

Starts `mlflow models serve --env-manager local` for a registered classifier on a free loopback
port (or uses a server already running at `--url`), then sends `requests` requests from
`clients` threads at once (urllib, a new connection each), drawn with a fixed seed from the
kinds in `serve_requests.py`: good images, batches with bad rows among good ones, requests with
no readable row, an empty frame, a missing column. Each answer is checked against the serving
contract; any other answer (wrong status, a good row without a probability, a bad row without
its error, a stack trace, no answer at all) counts as an unexpected error, the target being 0.
Prints and writes to docs/benchmarks.md the counts and the latency percentiles per kind.

Only the model runs in the server; this process imports neither torch nor MLflow unless it
reads the served model's image size from the registry.
"""

from __future__ import annotations

import datetime
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pneumonia_aug.bench.report import SERVE_HEADING, write_section
from pneumonia_aug.bench.serve_requests import Kind, problem, request_kinds
from pneumonia_aug.errors import PneumoniaAugError
from pneumonia_aug.machine import cpu_model
from pneumonia_aug.services.base import HOST
from pneumonia_aug.services.processes import free_ports, spawn, start_time, stop_group, wait_ready

WEIGHTS = (40, 15, 20, 10, 10, 5)  # how often each of request_kinds() is drawn, in order
IMAGES_PER_CLASS = 2  # real test X-rays the good rows use
REQUEST_TIMEOUT_S = 120.0


@dataclass
class Outcome:
    kind: Kind
    seconds: float
    problem: str | None


@dataclass
class ServeResult:
    heading: str
    settings: dict
    kinds: list[Kind] = field(default_factory=list)  # the table's rows, in this order
    outcomes: list[Outcome] = field(default_factory=list)
    wall_s: float = 0.0
    markdown: str = ""

    @property
    def unexpected(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.problem]


@contextmanager
def served(model_uri: str, workers: int = 1, timeout: float = 180.0,
           log_dir: str | Path | None = None, env: dict | None = None) -> Iterator[str]:
    """`mlflow models serve` for `model_uri` on a free loopback port; yields its base URL and
    stops its whole process group on exit. Its log goes to `log_dir` (default: a temp folder);
    `env` adds to the environment it inherits (e.g. MLFLOW_TRACKING_URI)."""
    port = free_ports(1)[0]
    own_dir = None if log_dir else tempfile.mkdtemp(prefix="bench-serve-")
    log_path = Path(log_dir or own_dir) / "serve.log"
    bin_dir = str(Path(sys.executable).parent)  # `--env-manager local` runs uvicorn from PATH
    env = {**os.environ, **(env or {})}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    pid = spawn([sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri,
                 "--env-manager", "local", "--host", HOST, "--port", str(port),
                 "--workers", str(workers)], log_path, env)
    url = f"http://{HOST}:{port}"
    service = {"pid": pid, "started": start_time(pid), "log": str(log_path)}
    try:
        wait_ready(f"mlflow models serve {model_uri}", lambda: _pings(url), service, timeout)
        yield url
    finally:
        stop_group(pid)
    if own_dir:  # kept when the server failed: the error names its log
        shutil.rmtree(own_dir, ignore_errors=True)


def _pings(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/ping", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def send(url: str, kind: Kind) -> Outcome:
    """POST one request; time it to the last byte of the answer; check the answer."""
    request = urllib.request.Request(f"{url}/invocations", data=kind.body, method="POST",
                                     headers={"Content-Type": "application/json"})
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        return Outcome(kind, time.perf_counter() - start, f"no answer ({exc})")
    return Outcome(kind, time.perf_counter() - start, problem(kind, status, body))


def draw(kinds: list[Kind], n: int, seed: int) -> list[Kind]:
    """`n` requests, every kind at least once, the rest drawn by WEIGHTS."""
    rng = random.Random(seed)
    plan = list(kinds) + rng.choices(kinds, weights=WEIGHTS, k=max(0, n - len(kinds)))
    rng.shuffle(plan)
    return plan[:n]


def xray_files(data_dir: str) -> list[Path]:
    from pneumonia_aug.data.kermany import resolve_data_dir

    root = resolve_data_dir(data_dir)
    images = [p for label in ("NORMAL", "PNEUMONIA")
              for p in sorted((root / "test" / label).glob("*.jpeg"))[:IMAGES_PER_CLASS]]
    if len(images) < 2 * IMAGES_PER_CLASS:
        raise PneumoniaAugError(f"need {IMAGES_PER_CLASS} .jpeg images in each of "
                                f"{root}/test/NORMAL and test/PNEUMONIA")
    return images


def model_image_size(model_uri: str) -> str:
    """The served model's working size, from its run's config (`?` when unknown)."""
    if not model_uri.startswith("models:/"):
        return "?"
    from pneumonia_aug import tracking
    from pneumonia_aug.contract import CONFIG_ARTIFACT

    try:
        _, run_id = tracking.model_version_of(model_uri)
        return str((tracking.read_dict_artifact(run_id, CONFIG_ARTIFACT) or {})["image_size"])
    except (PneumoniaAugError, KeyError):
        return "?"


def hammer(url: str, plan: list[Kind], clients: int) -> tuple[list[Outcome], float]:
    """Send `plan` from `clients` threads at once; the outcomes and the wall time."""
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        outcomes = list(pool.map(lambda kind: send(url, kind), plan))
    return outcomes, time.perf_counter() - start


def _percentiles(seconds: list[float]) -> tuple[float, float]:
    """(p50, p95) in milliseconds."""
    if len(seconds) < 2:
        return (seconds[0] * 1e3,) * 2 if seconds else (float("nan"),) * 2
    cuts = statistics.quantiles(seconds, n=20, method="inclusive")
    return statistics.median(seconds) * 1e3, cuts[18] * 1e3


def render(result: ServeResult) -> str:
    s = result.settings
    outcomes = result.outcomes
    p50, p95 = _percentiles([o.seconds for o in outcomes])
    lines = [f"Measured {s['date']}: `{s['command']}` against `{s['model']}` ({s['image_size']}"
             f" px), `mlflow models serve --env-manager local --workers {s['workers']}` on "
             f"loopback (OMP_NUM_THREADS={s['threads']}, {s['cores']} cores, load average "
             f"{s['load']:.1f} when it started), {len(outcomes)} requests from {s['clients']} "
             "concurrent clients.", "",
             f"**Unexpected answers: {len(result.unexpected)}** (target 0). Latency over all "
             f"requests: p50 {p50:.0f} ms, p95 {p95:.0f} ms; {len(outcomes) / result.wall_s:.1f} "
             f"requests/s ({result.wall_s:.1f} s in all).", "",
             "| Request | Expected | Sent | Unexpected | p50 (ms) | p95 (ms) |",
             "|---|---|---:|---:|---:|---:|"]
    for kind in sorted(dict.fromkeys(o.kind for o in outcomes), key=result.kinds.index):
        mine = [o for o in outcomes if o.kind == kind]
        k50, k95 = _percentiles([o.seconds for o in mine])
        expected = f"{kind.status}" + (f", row errors {sorted(kind.bad_rows)}"
                                       if kind.status == 200 and kind.bad_rows else "")
        lines.append(f"| {kind.name} | {expected} | {len(mine)} | "
                     f"{sum(1 for o in mine if o.problem)} | {k50:.0f} | {k95:.0f} |")
    for o in result.unexpected[:5]:
        lines.append(f"\n- unexpected ({o.kind.name}): {o.problem}")
    return "\n".join(lines) + "\n"


def run_serve_bench(model: str, url: str = "", requests: int = 500, clients: int = 8,
                    data_dir: str = "", workers: int = 1, seed: int = 0,
                    output: str | Path | None = "docs/benchmarks.md") -> ServeResult:
    """Serve `model` (unless `url` is given), send the requests, write the section."""
    if requests < 1 or clients < 1:
        raise PneumoniaAugError("--requests and --clients must be at least 1")
    if not url and model.startswith("models:/"):
        from pneumonia_aug.serving.registry import check_alias

        check_alias(model)
    kinds = request_kinds(xray_files(data_dir))
    plan = draw(kinds, requests, seed)
    settings = {"date": datetime.date.today().isoformat(), "model": url or model,
                "image_size": "?" if url else model_image_size(model), "workers": workers,
                "clients": clients, "load": os.getloadavg()[0], "cores": os.cpu_count(),
                "threads": os.environ.get("OMP_NUM_THREADS", "unset"),
                "command": f"pneumonia-aug bench serve --requests {requests} --clients {clients}"}
    result = ServeResult(SERVE_HEADING + cpu_model(), settings, kinds)
    if url:
        result.outcomes, result.wall_s = hammer(url.rstrip("/"), plan, clients)
    else:
        with served(model, workers) as served_url:
            result.outcomes, result.wall_s = hammer(served_url, plan, clients)
    result.markdown = render(result)
    if output:
        write_section(Path(output), result.heading, result.markdown)
    return result
