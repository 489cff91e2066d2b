"""AsyncPodRunner: 10,000 runs on the async fake, 1,000 on kwok beside the sync ways, the transport.

1. **10,000 concurrent runs on the async fake** (``run_many(max_parallel=10_000)``, an hour-long
   container each... of virtual time, 60 s here): all correct, wall time, and peak Python memory
   per run (tracemalloc, in a second pass: it slows the run). The peak is split into the fake
   cluster's share (its store, kubelet and copies) and the driver's (the ``run`` package,
   asyncio's tasks and futures). Beside it, 1,000 runs through the async and the sync runner.
2. **1,000 concurrent runs on a local kwok control plane**, three ways, side by side:
   ``AsyncPodRunner.run_many``, the sync ``PodRunner.run_many``, and ``asyncio.to_thread(
   PodRunner.run, ...)`` for each spec (what users do today; the loop's default executor is
   given 1,000 threads, else it runs 6 at a time on this machine). For each: correct runs,
   wall time, the peak number of OS threads in the process (sampled every 20 ms), the peak
   resident memory above the start, watch streams opened, and (async) requests per run.
3. **The transport**: one pod read 300 times in a row and 300 times 50 at a time, by the
   async backend (aiohttp, raw JSON), by httpx on raw JSON with the same credentials, and by
   ``kubernetes_asyncio`` (models, and raw JSON); import times in fresh interpreters.

Needs the control-plane binaries; httpx and ``kubernetes_asyncio`` (the ``bench`` group) are
optional.
"""

from __future__ import annotations

import asyncio
import gc
import json
import statistics
import subprocess
import sys
import threading
import time
import tracemalloc
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))

from podrunner import AsyncPodRunner, PodRunner, PodSpec  # noqa: E402
from podrunner.backends.kubernetes import ClusterConfig, KubernetesBackend  # noqa: E402
from podrunner.testing import FakeCluster  # noqa: E402

FAKE_RUNS = 10_000
KWOK_RUNS = 1_000
TRANSPORT_CALLS = 300
SPEC = PodSpec(image="busybox:1.36", command=["echo", "hi"])


def sim_spec(i: int) -> PodSpec:
    """A kwok pod that runs 2 s and prints its own index."""
    return PodSpec(
        image="busybox:1.36",
        command=["echo", str(i)],
        annotations={"sim.podrunner.dev/duration": "2", "sim.podrunner.dev/logs": f"{i}\n"},
    )


# -- 1. the async fake -----------------------------------------------------------------------


async def _fake_runs(n: int, *, snapshot: bool) -> dict[str, Any]:
    cluster = FakeCluster()
    cluster.when(image="busybox:*").succeed(logs="hi\n", after=60.0)
    runner = AsyncPodRunner(cluster.async_backend)
    start = time.perf_counter()
    task = asyncio.create_task(runner.run_many([SPEC] * n, max_parallel=n))
    shares: dict[str, float] = {}
    if snapshot:
        await cluster.async_backend.clock.sleep(30)  # every run is in flight now
        shares = _shares(tracemalloc.take_snapshot(), n)
    outcomes = await task
    wall = time.perf_counter() - start
    ok = sum(1 for o in outcomes if not isinstance(o, Exception) and o.logs == "hi\n")
    return {"ok": ok, "wall": wall, "streams": runner.watch_stats()["streams_opened"], **shares}


def _shares(snap: tracemalloc.Snapshot, n: int) -> dict[str, float]:
    driver = fake = other = 0
    for stat in snap.statistics("filename"):
        name = stat.traceback[0].filename
        if "/podrunner/run/" in name or "/asyncio/" in name or "aio_clock" in name:
            driver += stat.size
        elif "/podrunner/" in name:
            fake += stat.size
        else:
            other += stat.size
    return {
        "driver_kib": driver / n / 1024,
        "fake_kib": fake / n / 1024,
        "other_kib": other / n / 1024,
    }


def fake_figures() -> dict[str, object]:
    gc.collect()
    plain = asyncio.run(_fake_runs(FAKE_RUNS, snapshot=False))
    gc.collect()
    tracemalloc.start()
    traced = asyncio.run(_fake_runs(FAKE_RUNS, snapshot=True))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # The sync runner beside the async one, on 1,000 runs.
    gc.collect()
    async_1000 = asyncio.run(_fake_runs(1_000, snapshot=False))["wall"]
    cluster = FakeCluster()
    cluster.when(image="busybox:*").succeed(logs="hi\n", after=60.0)
    start = time.perf_counter()
    list(PodRunner(cluster.backend).run_many([SPEC] * 1_000, max_parallel=1_000))
    sync_1000 = time.perf_counter() - start
    return {
        "fake_10000_correct": plain["ok"],
        "fake_10000_wall_s": round(plain["wall"], 2),
        "fake_10000_watch_streams_opened": plain["streams"],
        "fake_10000_peak_kib_per_run": round(peak / FAKE_RUNS / 1024, 1),
        "fake_10000_in_flight_driver_kib_per_run": round(traced["driver_kib"], 1),
        "fake_10000_in_flight_fake_kib_per_run": round(traced["fake_kib"], 1),
        "fake_10000_memory_target_20kib_met": peak / FAKE_RUNS / 1024 <= 20,
        "fake_1000_async_wall_s": round(async_1000, 2),
        "fake_1000_sync_wall_s": round(sync_1000, 2),
    }


# -- 2. kwok: three ways to run 1,000 pods ------------------------------------------------------


class Sampler:
    """Peak OS threads and resident memory of this process, sampled in a thread of its own.

    ``threads`` leaves out the sampler and the local control plane's own helpers (its log
    agent runs in this process, as ``podrunner-kwok-logs*``): what is left is the runner's.
    ``all_threads`` counts every thread of the process.
    """

    def __init__(self) -> None:
        self.threads = 0
        self.all_threads = 0
        self.rss = 0
        self._stop = threading.Event()
        self._base_rss = _rss()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        me = threading.current_thread()
        while not self._stop.wait(0.02):
            threads = threading.enumerate()
            self.all_threads = max(self.all_threads, len(threads))
            mine = [t for t in threads if t is not me and not t.name.startswith("podrunner-kwok")]
            self.threads = max(self.threads, len(mine))
            self.rss = max(self.rss, _rss())

    @property
    def rss_mib(self) -> float:
        return round(max(0, self.rss - self._base_rss) / 2**20, 1)


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


class Counting:
    """An async backend proxy that counts the calls (each one HTTP request) by verb and kind."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.counts: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name in ("create", "get", "list", "patch", "delete", "watch", "read_log"):

            async def counted(*args: Any, **kw: Any) -> Any:
                self.counts[name] += 1
                return await attr(*args, **kw)

            return counted
        return attr


def _first_error(outcomes: list[Any]) -> str:
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            return f"{type(outcome).__name__}: {outcome}"[:200]
    return ""


def _correct(outcomes: list[Any]) -> int:
    return sum(
        1
        for i, o in enumerate(outcomes)
        if not isinstance(o, BaseException) and o.exit_code == 0 and o.logs == f"{i}\n"
    )


async def _kwok_async(config: ClusterConfig, specs: list[PodSpec]) -> dict[str, object]:
    from podrunner.backends.kubernetes.aio import AsyncKubernetesBackend

    backend = Counting(AsyncKubernetesBackend(config, pool_size=200))
    runner = AsyncPodRunner(backend)  # type: ignore[arg-type]
    await runner.run(sim_spec(0))  # warm: the pool and the first watch
    backend.counts.clear()
    with Sampler() as sampler:
        start = time.perf_counter()
        outcomes = await runner.run_many(specs, max_parallel=len(specs))
        wall = time.perf_counter() - start
    stats = runner.watch_stats()
    await runner.close()
    await backend.inner.close()
    return {
        "kwok_1000_async_correct": _correct(outcomes),
        "kwok_1000_async_wall_s": round(wall, 1),
        "kwok_1000_async_peak_threads": sampler.threads,
        "kwok_1000_async_peak_process_threads": sampler.all_threads,
        "kwok_1000_async_peak_rss_mib": sampler.rss_mib,
        "kwok_1000_async_watch_streams_peak": stats["peak_open_streams"],
        "kwok_1000_async_requests_per_run": round(sum(backend.counts.values()) / len(specs), 2),
        "kwok_1000_async_requests": dict(backend.counts),
        "kwok_1000_async_first_error": _first_error(outcomes),
    }


def _kwok_sync(config: ClusterConfig, specs: list[PodSpec]) -> dict[str, object]:
    backend = KubernetesBackend(config, pool_size=1100)
    runner = PodRunner(backend)
    runner.run(sim_spec(0))
    with Sampler() as sampler:
        start = time.perf_counter()
        outcomes = list(runner.run_many(specs, max_parallel=len(specs)))
        wall = time.perf_counter() - start
    streams = runner.watch_stats()["peak_open_streams"]
    runner.close()
    backend.close()
    # run_many yields in finishing order: each index's output must come exactly once.
    seen = Counter(o.logs for o in outcomes if not isinstance(o, Exception) and o.exit_code == 0)
    ok = sum(1 for i in range(len(specs)) if seen[f"{i}\n"] == 1)
    return {
        "kwok_1000_sync_correct": ok,
        "kwok_1000_sync_wall_s": round(wall, 1),
        "kwok_1000_sync_peak_threads": sampler.threads,
        "kwok_1000_sync_peak_process_threads": sampler.all_threads,
        "kwok_1000_sync_peak_rss_mib": sampler.rss_mib,
        "kwok_1000_sync_watch_streams_peak": streams,
        "kwok_1000_sync_first_error": _first_error(outcomes),
    }


async def _kwok_to_thread(config: ClusterConfig, specs: list[PodSpec]) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    loop.set_default_executor(ThreadPoolExecutor(max_workers=len(specs)))
    backend = KubernetesBackend(config, pool_size=1100)
    runner = PodRunner(backend)
    await asyncio.to_thread(runner.run, sim_spec(0))
    with Sampler() as sampler:
        start = time.perf_counter()
        outcomes = await asyncio.gather(
            *(asyncio.to_thread(runner.run, spec) for spec in specs), return_exceptions=True
        )
        wall = time.perf_counter() - start
    streams = runner.watch_stats()["peak_open_streams"]
    runner.close()
    backend.close()
    return {
        "kwok_1000_to_thread_first_error": _first_error(list(outcomes)),
        "kwok_1000_to_thread_correct": _correct(list(outcomes)),
        "kwok_1000_to_thread_wall_s": round(wall, 1),
        "kwok_1000_to_thread_peak_threads": sampler.threads,
        "kwok_1000_to_thread_peak_process_threads": sampler.all_threads,
        "kwok_1000_to_thread_peak_rss_mib": sampler.rss_mib,
        "kwok_1000_to_thread_watch_streams_peak": streams,
    }


# -- 3. the transport ----------------------------------------------------------------------------


async def _backend_reads(config: ClusterConfig, name: str) -> tuple[float, float]:
    from podrunner.backends.kubernetes.aio import AsyncKubernetesBackend

    async with AsyncKubernetesBackend(config) as backend:

        async def one() -> None:
            await backend.get("Pod", "default", name)

        return await _timed(one)


async def _httpx_reads(config: ClusterConfig, name: str) -> tuple[float, float]:
    import httpx

    from podrunner.backends.kubernetes.aio import _auth_headers, _ssl_context

    client_config = config.load_client_configuration()
    async with httpx.AsyncClient(
        base_url=str(client_config.host),
        verify=_ssl_context(client_config),
        headers=_auth_headers(client_config),
        limits=httpx.Limits(max_connections=100),
        trust_env=False,
    ) as client:

        async def one() -> None:
            response = await client.get(f"/api/v1/namespaces/default/pods/{name}")
            json.loads(response.content)

        return await _timed(one)


async def _timed(one: Any) -> tuple[float, float]:
    await one()
    start = time.perf_counter()
    for _ in range(TRANSPORT_CALLS):
        await one()
    sequential_ms = (time.perf_counter() - start) * 1000 / TRANSPORT_CALLS
    slots = asyncio.Semaphore(50)

    async def bounded() -> None:
        async with slots:
            await one()

    start = time.perf_counter()
    await asyncio.gather(*(bounded() for _ in range(TRANSPORT_CALLS)))
    per_s = TRANSPORT_CALLS / (time.perf_counter() - start)
    return sequential_ms, per_s


async def _kubernetes_asyncio_reads(kubeconfig: Path, name: str, raw: bool) -> tuple[float, float]:
    from kubernetes_asyncio import client, config

    configuration = client.Configuration()
    await config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    async with client.ApiClient(configuration) as api_client:
        core = client.CoreV1Api(api_client)

        async def one() -> None:
            if raw:
                response = await core.read_namespaced_pod(name, "default", _preload_content=False)
                json.loads(await response.read())
            else:
                await core.read_namespaced_pod(name, "default")

        return await _timed(one)


def _import_ms(statement: str) -> float:
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    times = [
        float(
            subprocess.run(
                [sys.executable, "-c", code],
                capture_output=True,
                text=True,
                check=True,
                env={"PYTHONPATH": str(SRC) + ":" + ":".join(sys.path[1:])},
            ).stdout
        )
        for _ in range(5)
    ]
    return round(statistics.median(times) * 1000, 1)


def transport_figures(config: ClusterConfig, kubeconfig: Path) -> dict[str, object]:
    sync = KubernetesBackend(config)
    pod = sync.create(_plain_pod())
    name = pod["metadata"]["name"]
    figures: dict[str, object] = {}
    seq, per_s = asyncio.run(_backend_reads(config, name))
    figures["transport_aiohttp_raw_get_ms"] = round(seq, 2)
    figures["transport_aiohttp_raw_get_50_concurrent_per_s"] = round(per_s)
    figures["transport_aiohttp_import_ms"] = _import_ms("import podrunner.backends.kubernetes.aio")
    try:
        seq, per_s = asyncio.run(_httpx_reads(config, name))
    except ImportError:
        figures["transport_httpx"] = "not installed"
    else:
        figures["transport_httpx_raw_get_ms"] = round(seq, 2)
        figures["transport_httpx_raw_get_50_concurrent_per_s"] = round(per_s)
        figures["transport_httpx_import_ms"] = _import_ms("import httpx")
    try:
        import kubernetes_asyncio  # noqa: F401
    except ImportError:
        figures["transport_kubernetes_asyncio"] = "not installed"
    else:
        for raw in (False, True):
            label = "raw" if raw else "models"
            seq, per_s = asyncio.run(_kubernetes_asyncio_reads(kubeconfig, name, raw))
            figures[f"transport_kubernetes_asyncio_{label}_get_ms"] = round(seq, 2)
            figures[f"transport_kubernetes_asyncio_{label}_get_50_concurrent_per_s"] = round(per_s)
        figures["transport_kubernetes_asyncio_import_ms"] = _import_ms(
            "import kubernetes_asyncio.client, kubernetes_asyncio.config"
        )
    sync.delete("Pod", "default", name, grace_period_seconds=0)
    sync.close()
    return figures


def _plain_pod() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"generateName": "bench-get-", "namespace": "default"},
        "spec": {"containers": [{"name": "main", "image": "busybox:1.36", "command": ["true"]}]},
    }


def import_figures() -> dict[str, object]:
    return {
        "import_podrunner_ms": _import_ms("import podrunner"),
        "import_async_runner_ms": _import_ms("from podrunner import AsyncPodRunner"),
        "import_podrunner_loads_asyncio": "asyncio"
        in subprocess.run(
            [sys.executable, "-c", "import sys, podrunner; print(' '.join(sys.modules))"],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONPATH": str(SRC)},
        ).stdout.split(),
    }


def kwok_figures() -> dict[str, object]:
    from podrunner.testing.controlplane.kwok import KwokCluster

    figures: dict[str, object] = {}
    specs = [sim_spec(i) for i in range(KWOK_RUNS)]
    # A fresh control plane for each way: kwok's in-process log agent serves no log to a
    # second batch of 1,000 pods in one cluster (the sync and the async runner alike).
    with KwokCluster() as cluster:
        config = ClusterConfig.from_kubeconfig_file(cluster.kubeconfig)
        figures.update(transport_figures(config, Path(cluster.kubeconfig)))
        figures.update(asyncio.run(_kwok_async(config, specs)))
    gc.collect()
    with KwokCluster() as cluster:
        figures.update(_kwok_sync(ClusterConfig.from_kubeconfig_file(cluster.kubeconfig), specs))
    gc.collect()
    with KwokCluster() as cluster:
        config = ClusterConfig.from_kubeconfig_file(cluster.kubeconfig)
        figures.update(asyncio.run(_kwok_to_thread(config, specs)))
    figures["kwok_1000_threads_target_4_met"] = figures["kwok_1000_async_peak_threads"] <= 4  # type: ignore[operator]
    figures["kwok_1000_requests_target_4_met"] = (
        figures["kwok_1000_async_requests_per_run"] <= 4  # type: ignore[operator]
    )
    return figures


def run() -> dict[str, object]:
    figures = import_figures()
    figures.update(fake_figures())
    figures.update(kwok_figures())
    return figures


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
