"""Index build time, throughput and peak memory: today's build against this one, full and incremental.

    .venv/bin/python -m benchmarks.bench_build --documents 5000 --profile fast --today --incremental 3

Every build runs in a fresh child process; this process (standard library only while measuring) reads
the child's peak RSS from `os.wait4` and times it from spawn to exit. The knowledge is synthetic
(`benchmarks/corpus.py`: small Markdown files, one passage of 4-8 sentences each, seed 0).

- today (run last: it is the slowest): the code at commit d33a734 (`--today-path`, a checkout of it), run with the main venv's
  Python: it embeds with sentence-transformers (torch) MiniLM, then checks an ONNX export against it.
- full: this code, a fresh index folder (empty embedding cache). The ONNX export is made once before
  the timings (a first build per model pays it once: reported separately).
- separate (`--separate-token-pass`): this code with each passage's token vectors computed in a pass of
  their own, as before `tokens_in_context` (a fresh index folder, like full).
- incremental: this code, after the full build: one document rewritten (every sentence new), then
  `build_index` again; a different document each run.

texts = passages + sentences (what both builds embed as vectors); texts/s = texts / build time.
The machine is shared: the load average before each run and the CPU other processes used during it
(from /proc/stat, minus the child's own CPU time) are reported with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TODAY_PYTHON = "/work/main/.venv/bin/python"
TODAY_PATH = "/work/wt/old"

NEW_BUILD = """
import json, sys, time, logging
from pathlib import Path
logging.basicConfig(level=logging.WARNING)
started = time.perf_counter()
from index_builder.build import build_index
profile = sys.argv[3]
if sys.argv[5:] == ["separate"]:  # the passages' token vectors in a pass of their own (before tokens_in_context)
    import dataclasses
    from index_builder.profiles import load_profile
    p = load_profile(profile)
    profile = dataclasses.replace(p, models=tuple(dataclasses.replace(m, tokens_in_context=False) for m in p.models))
r = build_index(Path(sys.argv[1]), Path(sys.argv[2]), profile=profile, encoder_cache=Path(sys.argv[4]))
m = json.loads((r.version_dir / "manifest.json").read_text())
print(json.dumps({"took_s": r.took_s, "in_process_s": time.perf_counter() - started, "passages": r.passage_count,
                  "sentences": m["sentence_count"], "skipped": r.skipped}))
"""

TODAY_BUILD = """
import json, sys, time, logging
from pathlib import Path
logging.basicConfig(level=logging.WARNING)
started = time.perf_counter()
from index_builder.build import build_index
r = build_index(Path(sys.argv[1]), Path(sys.argv[2]))
passages = json.loads((r.version_dir / "passages.json").read_text())["passages"]
print(json.dumps({"took_s": r.took_s, "in_process_s": time.perf_counter() - started, "passages": r.passage_count,
                  "sentences": sum(len(p["sentences"]) for p in passages), "skipped": r.skipped}))
"""


def _cpu_busy_s() -> float:
    """Seconds of CPU time all processes have used (user + system + ...), from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(f) for f in fields]
    idle = ticks[3] + ticks[4]  # idle + iowait
    return (sum(ticks) - idle) / os.sysconf("SC_CLK_TCK")


def _loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def measured(argv: list[str], env: dict[str, str], cwd: Path) -> dict[str, Any]:
    """Run one build in a child; its wall time, peak RSS and CPU time (its own rusage, from wait4)."""
    load = _loadavg()
    busy0, started = _cpu_busy_s(), time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out = proc.stdout.read()  # type: ignore[union-attr]
    err = proc.stderr.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    busy = _cpu_busy_s() - busy0
    if status != 0:
        raise RuntimeError(f"{' '.join(argv[:3])} failed ({status}):\n{err[-3000:]}")
    own_cpu = usage.ru_utime + usage.ru_stime
    result = json.loads(out.strip().splitlines()[-1])
    result.update(
        wall_s=round(wall, 2),
        peak_rss_mib=round(usage.ru_maxrss / 1024, 1),
        cpu_s=round(own_cpu, 1),
        load_before=load,
        others_cores=round(max(0.0, busy - own_cpu) / wall, 2),
    )
    result["texts"] = result["passages"] + result["sentences"]
    result["texts_per_s"] = round(result["texts"] / result["wall_s"], 1)
    return result


def rewrite_document(knowledge: Path, n: int, seed: int) -> str:
    from benchmarks.corpus import Corpus, document

    paths = sorted(knowledge.rglob("*.md"))
    path = paths[(n * 7919) % len(paths)]
    _ORIGINALS.setdefault(n, (path, path.read_text(encoding="utf-8")))
    path.write_text(document(Corpus(seed=10_000 + seed)), encoding="utf-8")
    return path.relative_to(knowledge).as_posix()


_ORIGINALS: dict[int, tuple[Path, str]] = {}


def restore_document(knowledge: Path, n: int) -> None:
    """Put back what rewrite_document(knowledge, n, ...) replaced."""
    path, text = _ORIGINALS.pop(n)
    path.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=5000)
    parser.add_argument("--profile", default="fast")
    parser.add_argument("--today", action="store_true", help="also build with today's code (commit d33a734)")
    parser.add_argument("--today-path", default=TODAY_PATH)
    parser.add_argument("--today-python", default=TODAY_PYTHON)
    parser.add_argument("--full-runs", type=int, default=1)
    parser.add_argument(
        "--separate-token-pass", action="store_true", help="also a full build with token vectors in a pass of their own"
    )
    parser.add_argument("--incremental", type=int, default=3, help="incremental rebuilds after the (last) full build")
    parser.add_argument("--scratch", type=Path, help="work folder (default: a temporary one, removed at the end)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "build.json")
    args = parser.parse_args()

    from benchmarks.corpus import write_small_files

    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="qabot-bench-build-"))
    scratch.mkdir(parents=True, exist_ok=True)
    knowledge, encoders = scratch / "knowledge", scratch / "encoders"
    shutil.rmtree(knowledge, ignore_errors=True)
    write_small_files(knowledge, args.documents, seed=0)
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONPATH=str(ROOT))
    new = [sys.executable, "-c", NEW_BUILD]
    report: dict[str, Any] = {
        "machine": _machine(),
        "documents": args.documents,
        "profile": args.profile,
        "uptime_before": Path("/proc/loadavg").read_text().strip(),
    }

    # the ONNX export, once (a first build per model pays it; later builds reuse it)
    tiny = scratch / "tiny"
    shutil.rmtree(tiny, ignore_errors=True)
    write_small_files(tiny, 3, seed=99)
    report["first_build_with_export"] = measured(
        [*new, str(tiny), str(scratch / "tiny-index"), args.profile, str(encoders)], env, ROOT
    )
    print("export:", report["first_build_with_export"], flush=True)

    runs: dict[str, list[dict[str, Any]]] = {"today": [], "full": [], "separate": [], "incremental": []}
    report["runs"] = runs

    def save() -> None:  # after every run: a benchmark stopped half-way keeps what it measured
        report["summary"] = {k: _summary(v) for k, v in runs.items() if v}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1), encoding="utf-8")

    for _ in range(args.full_runs):
        index = scratch / "index"
        shutil.rmtree(index, ignore_errors=True)
        res = measured([*new, str(knowledge), str(index), args.profile, str(encoders)], env, ROOT)
        runs["full"].append(res)
        print("full:", res, flush=True)
        save()
    if args.separate_token_pass:
        for _ in range(args.full_runs):
            index = scratch / "separate-index"
            shutil.rmtree(index, ignore_errors=True)
            res = measured([*new, str(knowledge), str(index), args.profile, str(encoders), "separate"], env, ROOT)
            runs["separate"].append(res)
            print("separate:", res, flush=True)
            save()
        shutil.rmtree(scratch / "separate-index", ignore_errors=True)
    for i in range(args.incremental):
        changed = rewrite_document(knowledge, i + 1, i)
        res = measured([*new, str(knowledge), str(scratch / "index"), args.profile, str(encoders)], env, ROOT)
        res["changed"] = changed
        runs["incremental"].append(res)
        print("incremental:", res, flush=True)
        save()
    # today's build last (it is the slowest), on the knowledge as the full builds saw it
    if args.today:
        for i in reversed(range(args.incremental)):
            restore_document(knowledge, i + 1)
        for _ in range(args.full_runs):
            index = scratch / "today-index"
            shutil.rmtree(index, ignore_errors=True)
            today_env = dict(env, PYTHONPATH=args.today_path)
            res = measured(
                [args.today_python, "-c", TODAY_BUILD, str(knowledge), str(index)], today_env, Path(args.today_path)
            )
            runs["today"].append(res)
            print("today:", res, flush=True)
            save()
    report["runs"] = runs
    report["summary"] = {k: _summary(v) for k, v in runs.items() if v}
    report["uptime_after"] = Path("/proc/loadavg").read_text().strip()
    report["index_bytes"] = sum(
        p.stat().st_size for p in (scratch / "index" / "current").resolve().rglob("*") if p.is_file()
    )
    report["embedding_cache_bytes"] = sum(
        p.stat().st_size for p in (scratch / "index" / ".cache" / "embeddings").rglob("*") if p.is_file()
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1), encoding="utf-8")
    print(json.dumps(report["summary"], indent=1))
    if not args.scratch:
        shutil.rmtree(scratch, ignore_errors=True)


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def med(key: str) -> float:
        return round(statistics.median(r[key] for r in runs), 2)

    return {
        "runs": len(runs),
        "wall_s": med("wall_s"),
        "wall_s_range": [min(r["wall_s"] for r in runs), max(r["wall_s"] for r in runs)],
        "took_s": med("took_s"),
        "texts": runs[0]["texts"],
        "texts_per_s": med("texts_per_s"),
        "peak_rss_mib": med("peak_rss_mib"),
        "load_before": [r["load_before"] for r in runs],
        "others_cores": [r["others_cores"] for r in runs],
    }


def _machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    mem = int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024
    return f"{os.cpu_count()} x {cpu}, {mem:.1f} GiB RAM, Python {sys.version.split()[0]}"


if __name__ == "__main__":
    main()
