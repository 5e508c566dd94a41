"""Scale-out benchmark: screen pools of 1k, 10k and 100k structures, streamed and sharded.

Run as ``.venv/bin/python benchmarks/scale.py`` (``make bench``) for the ``cell`` preset
and ``benchmarks/scale.py --preset full`` for the default structure preset; ``--sizes
1000,10000`` runs a subset (added to the sizes an earlier run of the preset wrote),
``--speedup-size 0`` skips the 1-vs-2-worker runs, ``--skip-local`` the in-process one,
``--dask-defaults`` starts the workers with Dask's own background settings instead of the
lean ones miscreen's SLURMCluster workers get (``batch.backends.LEAN_WORKER_CONFIG``:
profiler off, event-loop tick and memory monitor every second); write that to another
``--out``.
Writes ``results/bench/scale.json`` (a run of one preset keeps the other's keys):

- ``throughput``: structures screened per second (featurize + predict + rank, from the
  structure store to ``candidates.csv``) per pool size, on a Dask ``LocalCluster`` of
  ``--workers`` worker processes with one thread each, from a cold feature cache (every
  structure is featurized; the pools overlap, so a warm cache would time lookups);
- ``scaling_100k_over_10k``: throughput at 100k over throughput at 10k (linear: >= 0.8);
- ``peak_rss_gb``: peak resident memory of the whole process tree (client, scheduler and
  workers, sampled) while screening the largest pool; ``peak_rss_gb_by_size`` per size;
- ``dask_speedup_2_workers``: time on one worker over time on two, same pool: the median
  of ``--speedup-repeats`` pairs run back to back (each pair's ratio in
  ``dask_speedup_2_workers_each``; one pair moved by up to 0.08 between runs here);
  ``dask_speedup_2_workers_over_in_process``: the in-process (``LocalBackend``) time over
  the two-worker time;
- with ``--preset full``, the same numbers under ``full_`` keys: ``full_throughput`` per
  size, ``full_peak_rss_gb``, ``full_scaling_100k_over_10k``,
  ``full_dask_speedup_2_workers``, ... The structure rows go to the ``structure`` model
  (the ``full`` preset) even where grouped CV would route them to the ``cell`` model
  (``full_routing_by_cv`` keeps that choice), so that the preset is what is measured.

Pools are made from the 443 Li-containing Materials Project structures of the mp-2018
snapshot: element substitutions (S->Se, O->S, Cl->Br, Ge->Sn, ...) and isotropic lattice
strains, written as a structure store (``structures.parquet`` in row groups of 2,000). The
models are small ExtraTrees trained on OBELiX here, one model folder per preset.
A pool repeats each of its ~900 compositions once per strain, so per-process caches of
composition-only results (the oxidation-state guess) hit after the first ~900 rows; a
pool of distinct materials costs more per row. What the ``full`` preset costs (issue 26,
measured on the shared 2-core machine in CPU seconds, which its load barely moves): in
one process, store to ``candidates.csv``, 2.4 ms per structure on the 10k pool (24.1 s
wall, 2026-12-05; 3.2 ms of CPU a day earlier); featurizing alone 2.2 ms per distinct
structure of ``benchmarks/featurize.py``'s speed set (10-12 ms before issue 26's
changes, which matched the 150-177 rows/s a default run logged on two workers).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "bench" / "scale.json"
WORK = REPO / "results" / "bench" / "scale"
SHARED = Path(os.environ.get("MISCREEN_MIRROR", REPO.parent / "shared" / "data"))
os.environ.setdefault("MISCREEN_MIRROR", str(SHARED))
SNAPSHOT = SHARED / "mp-2018" / "mp_2018_matminer.jsonl.gz"
SIZES = (1_000, 10_000, 100_000)
MAX_SITES = 60
ROW_GROUP = 2_000
SUBSTITUTIONS: tuple[dict[str, str], ...] = (
    {},
    {"S": "Se"},
    {"O": "S"},
    {"Cl": "Br"},
    {"Br": "I"},
    {"P": "As"},
    {"Ge": "Sn"},
    {"Si": "Ge"},
    {"Fe": "Mn"},
    {"Co": "Ni"},
    {"Ti": "Zr"},
    {"N": "P"},
    {"F": "Cl"},
    {"Na": "K"},
    {"Al": "Ga"},
)

CONFIG = """
run_name: model-{preset}
seed: 0
results_dir: {work}/results/{name}
models_dir: {work}/models
data: {{test_split: null}}
features: {{preset: {preset}}}
model: {{kind: extra_trees, n_estimators: 50, cv_folds: 2}}
candidates:
  - kind: store
    path: {store}
batch: {{chunk_size: {chunk}}}
"""


def base_records() -> list[dict]:
    """Records of every substitution variant of the snapshot's Li structures (<= 60 sites)."""
    from pymatgen.core import Structure

    from miscreen.fetch.records import structure_record

    out = []
    with gzip.open(SNAPSHOT, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    for row in rows:
        if row["nsites"] > MAX_SITES:
            continue
        structure = Structure.from_dict(row["structure"])
        elements = {el.symbol for el in structure.composition.elements}
        if "Li" not in elements:
            continue
        for k, sub in enumerate(SUBSTITUTIONS):
            if (sub and not set(sub) <= elements) or set(sub.values()) & elements:
                continue
            variant = structure.copy()
            if sub:
                variant.replace_species(sub)
            rec = structure_record(f"{row['material_id']}-s{k}", "bench", variant)
            out.append(rec)
    return out


def strained(rec: dict, j: int) -> dict:
    """``rec`` under an isotropic strain of (j - 50) x 0.1 % (symmetry unchanged)."""
    f = 1.0 + 0.001 * (j - 50)
    d = json.loads(rec["structure"])
    lat = d["lattice"]
    lat["matrix"] = [[x * f for x in row] for row in lat["matrix"]]
    for k in ("a", "b", "c"):
        if k in lat:
            lat[k] *= f
    if "volume" in lat:
        lat["volume"] *= f**3
    for site in d["sites"]:
        site["xyz"] = [x * f for x in site["xyz"]]
    out = dict(rec, id=f"{rec['id']}-e{j:03d}", structure=json.dumps(d))
    for k in ("a", "b", "c"):
        out[k] = rec[k] * f
    return out


def pool(bases: list[dict], n: int) -> Iterator[dict]:
    """The first ``n`` structures: every base variant at strain 0, then at strain 1, ..."""
    made = 0
    for j in range(n // len(bases) + 1):
        for rec in bases:
            if made == n:
                return
            yield strained(rec, j)
            made += 1


def write_store(bases: list[dict], n: int, folder: Path) -> Path:
    """A structure store of ``n`` structures, written in row groups (reused if present)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from miscreen import schema as S

    table = folder / "structures.parquet"
    if table.exists() and pq.ParquetFile(table).metadata.num_rows == n:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    tmp = table.with_suffix(".tmp")
    records = pool(bases, n)
    writer = None
    while batch := [rec for _, rec in zip(range(ROW_GROUP), records, strict=False)]:
        t = pa.Table.from_pandas(S.ensure_record_columns(pd.DataFrame(batch)), preserve_index=False)
        writer = writer or pq.ParquetWriter(tmp, t.schema)
        writer.write_table(t.cast(writer.schema))
    if writer is not None:
        writer.close()
    tmp.replace(table)
    return folder


def train_model(work: Path, preset: str) -> dict:
    """Quick models of ``preset`` on OBELiX (reused when present) -> the routing grouped CV
    chose. With a structure preset, structure rows are then sent to the ``structure``
    model whatever CV chose, so that the benchmark times that preset."""
    from miscreen import atomic_io
    from miscreen.catalog import ModelCatalog
    from miscreen.train.routing import read_routing
    from miscreen.train.row_kinds import STRUCTURE_MODEL, STRUCTURE_ROWS

    cfg_path = write_config(work, f"model-{preset}", work / "pool-1000", 500, preset)
    catalog = ModelCatalog(work / "models" / f"model-{preset}")
    by_cv = work / "models" / f"routing-by-cv-{preset}.json"
    if not (catalog.root / "composition" / "model.json").exists():
        exe = Path(sys.executable).with_name("miscreen")
        subprocess.run([str(exe), "train", str(cfg_path)], check=True)
        by_cv.write_text(json.dumps(read_routing(catalog)))
    routing = read_routing(catalog)
    if (catalog.root / STRUCTURE_MODEL).is_dir():
        routing[STRUCTURE_ROWS] = dict(routing[STRUCTURE_ROWS], model=STRUCTURE_MODEL)
        atomic_io.write_json(catalog.routing, routing)
    return json.loads(by_cv.read_text()) if by_cv.exists() else routing


def write_config(work: Path, name: str, store: Path, chunk: int, preset: str) -> Path:
    path = work / f"{name}.yaml"
    path.write_text(CONFIG.format(name=name, work=work, store=store, chunk=chunk, preset=preset))
    return path


class PeakRSS:
    """Samples the RSS of this process and all its descendants; keeps the peak sum."""

    def __init__(self, interval: float = 0.2) -> None:
        import psutil

        self.proc = psutil.Process()
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        total = 0
        for p in [self.proc, *self.proc.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except Exception:  # a worker that just exited
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            time.sleep(self.interval)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._sample())


def _warm(client: object) -> None:
    """Import the pipeline and the libraries it imports on first use on every worker, as
    on a cluster that is already running (or whose workers start with ``--preload
    miscreen.batch.preload``)."""
    from miscreen.batch.preload import warm_imports

    client.run(warm_imports)  # type: ignore[attr-defined]


def fresh_run(work: Path, name: str, n: int, chunk: int, preset: str) -> object:
    """The config of a run from scratch: no shard outputs, a cold feature cache (every
    structure is featurized, as on a first screen; the pools share structures, and a warm
    cache would time SQLite lookups instead)."""
    import shutil

    from miscreen.config import load_config

    cfg = load_config(write_config(work, name, work / f"pool-{n}", chunk, preset))
    shutil.rmtree(cfg.run_dir, ignore_errors=True)
    cold = work / "data" / name
    shutil.rmtree(cold, ignore_errors=True)
    os.environ["MISCREEN_DATA_DIR"] = str(cold)  # inherited by Dask worker processes
    return cfg


def screen_pool_local(work: Path, n: int, chunk: int, preset: str) -> dict:
    """Screen the n-structure pool in this process (``LocalBackend``): the serial reference."""
    from miscreen import batch

    cfg = fresh_run(work, f"pool-{n}-{preset}-local", n, chunk, preset)
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    batch.screen_all(cfg, batch.LocalBackend(batch.Predictor.from_config(cfg)))
    seconds = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    print(f"  {n} structures, in-process: {seconds:.1f} s, {n / seconds:.1f}/s", flush=True)
    return {"seconds": seconds, "cpu_seconds": cpu, "load_average_1min_after": os.getloadavg()[0]}


def screen_pool(work: Path, n: int, workers: int, chunk: int, preset: str) -> dict:
    """Screen the n-structure pool on a LocalCluster of ``workers`` -> seconds, peak RSS.

    The clock starts once the workers are up with miscreen imported (a running cluster);
    it includes model loading on the workers, store reading, featurizing, predicting,
    checkpoint writes and the merge that ranks and writes ``candidates.csv``.
    """
    import psutil
    from distributed import LocalCluster

    from miscreen import batch

    cfg = fresh_run(work, f"pool-{n}-{preset}-w{workers}", n, chunk, preset)
    me = psutil.Process()
    with (
        LocalCluster(n_workers=workers, threads_per_worker=1, processes=True) as cluster,
        cluster.get_client() as client,
    ):
        client.wait_for_workers(workers)
        _warm(client)
        procs = [me, *me.children(recursive=True)]
        cpu0 = sum(_cpu(p) for p in procs)
        with PeakRSS() as rss:
            t0 = time.perf_counter()
            backend = batch.DaskBackend(client, batch.Predictor.from_config(cfg))
            ranked = batch.screen_all(cfg, backend)
            seconds = time.perf_counter() - t0
        cpu = sum(_cpu(p) for p in procs) - cpu0
    ok = int(ranked["predicted_log10_sigma"].notna().sum())
    models = ranked["model"].value_counts().to_dict() if "model" in ranked else {}
    print(
        f"  {n} structures, {workers} worker(s): {seconds:.1f} s, {n / seconds:.1f}/s, "
        f"{cpu:.0f} CPU s, {ok} predicted, peak RSS {rss.peak / 2**30:.2f} GB, "
        f"load {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "predicted": ok,
        "rows": len(ranked),
        "served_by": {str(k): int(v) for k, v in models.items()},
        "peak_rss_gb": rss.peak / 2**30,
        "load_average_1min_after": os.getloadavg()[0],
    }


def _cpu(proc: object) -> float:
    """User + system CPU seconds of one process (0 when it is gone)."""
    try:
        t = proc.cpu_times()  # type: ignore[attr-defined]
        return float(t.user + t.system)
    except Exception:
        return 0.0


def summarise(runs: dict[int, dict], speed: dict, args: argparse.Namespace, routing: dict) -> dict:
    """This preset's numbers, under ``full_`` keys for the ``full`` preset."""
    from statistics import median

    ones, twos = speed.get(1, []), speed.get(2, [])  # pairs ran back to back, 1 then 2
    pairs = [one["seconds"] / two["seconds"] for one, two in zip(ones, twos, strict=False)]
    tput = {str(n): n / r["seconds"] for n, r in runs.items()}
    largest = max(runs) if runs else None
    out = {
        "throughput": tput,
        "throughput_unit": "structures/s, store -> ranked candidates.csv",
        "throughput_per_cpu_second": {str(n): n / r["cpu_seconds"] for n, r in runs.items()},
        "runs": {str(n): r for n, r in runs.items()},
        "peak_rss_gb": runs[largest]["peak_rss_gb"] if largest else None,
        "peak_rss_gb_at": largest,
        "scaling_100k_over_10k": (
            tput["100000"] / tput["10000"] if {"100000", "10000"} <= set(tput) else None
        ),
        "dask_speedup_2_workers": median(pairs) if pairs else None,
        "dask_speedup_2_workers_each": pairs,
        "dask_speedup_2_workers_over_in_process": (
            speed["local"]["seconds"] / median([r["seconds"] for r in speed[2]])
            if "local" in speed and speed.get(2)
            else None
        ),
        "dask_speedup_pool": args.speedup_pool,
        "dask_runs": {str(w): r for w, r in speed.items()},
        "workers": args.workers,
        "chunk_size": args.chunk_size,
        "preset": args.preset,
        "model": f"extra_trees, 50 trees, {args.preset} preset, OBELiX train split",
        "routing_by_cv": {kind: r["model"] for kind, r in routing.items()},
        "dask_worker_config": "dask defaults" if args.dask_defaults else "lean (miscreen's)",
        "load_average_1min_at_start": args.load_at_start,
        "cpus": os.cpu_count(),
        "python_hash_seed": os.environ.get("PYTHONHASHSEED"),
        "note": "the machine may be shared: see load_average_1min_after per run",
    }
    return {f"full_{k}": v for k, v in out.items()} if args.preset == "full" else out


def earlier_runs(previous: Path, preset: str) -> tuple[dict[int, dict], dict]:
    """The runs of ``preset`` already in the file (a later run of a size replaces them), so
    that ``--sizes 100000`` adds the largest pool to an earlier 1k and 10k run."""
    try:
        old = json.loads(previous.read_text())
    except (OSError, ValueError):
        return {}, {}
    prefix = "full_" if preset == "full" else ""
    if old.get(f"{prefix}preset") != preset:
        return {}, {}
    runs = {int(n): r for n, r in old.get(f"{prefix}runs", {}).items()}
    speed = {int(w) if w.isdigit() else w: r for w, r in old.get(f"{prefix}dask_runs", {}).items()}
    for w in (1, 2):  # a file from before the repeats holds one run per worker count
        if isinstance(speed.get(w), dict):
            speed[w] = [speed[w]]
    return runs, speed


def earlier_pool(args: argparse.Namespace) -> int | None:
    """The pool size of the 1-vs-2-worker runs kept from the file (``--speedup-size 0``)."""
    try:
        old = json.loads(args.out.read_text())
    except (OSError, ValueError):
        return None
    return old.get(f"{'full_' if args.preset == 'full' else ''}dask_speedup_pool")


def merged(previous: Path, result: dict, preset: str) -> dict:
    """``result`` plus the other preset's keys from the file already written."""
    try:
        old = json.loads(previous.read_text())
    except (OSError, ValueError):
        old = {}
    full = preset == "full"
    kept = {k: v for k, v in old.items() if k.startswith("full_") != full}
    return {**kept, **result} if full else {**result, **kept}


# Dask's nanny starts every worker under PYTHONHASHSEED=6640 (it replaces 0 or unset by
# that), so this process uses the same seed and the in-process run compares like with like.
HASH_SEED = "6640"


def same_hash_seed() -> None:
    """Re-run this script under the Dask workers' hash seed.

    Featurizing the same 4,000 structures in one process took 27-38 s depending on the
    hash seed alone (set iteration order in pymatgen's oxidation-state search), so runs
    under different seeds do not compare.
    """
    if os.environ.get("PYTHONHASHSEED") != HASH_SEED:
        os.environ["PYTHONHASHSEED"] = HASH_SEED
        os.execv(sys.executable, [sys.executable, *sys.argv])


def main(argv: list[str] | None = None) -> dict:
    from miscreen.featurize import PRESETS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="e.g. 1000,10000")
    parser.add_argument("--preset", default="cell", choices=PRESETS, help="features to time")
    parser.add_argument("--workers", type=int, default=2, help="Dask workers for throughput")
    parser.add_argument(
        "--speedup-size", type=int, default=10_000, help="pool for 1 vs 2 workers (0: none)"
    )
    parser.add_argument(
        "--speedup-repeats", type=int, default=3, help="1-vs-2-worker pairs (median reported)"
    )
    parser.add_argument("--chunk-size", type=int, default=500)
    parser.add_argument("--skip-local", action="store_true", help="no in-process run")
    parser.add_argument(
        "--dask-defaults",
        action="store_true",
        help="workers with Dask's default background settings (write to another --out)",
    )
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    args.load_at_start = os.getloadavg()[0]
    if not args.dask_defaults:  # the LocalCluster's nannies pass it to their workers
        import dask

        from miscreen.batch.backends import LEAN_WORKER_CONFIG

        dask.config.set(LEAN_WORKER_CONFIG)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    work = WORK
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    bases = base_records()
    for n in sorted({*sizes, max(args.speedup_size, 1000), 1000}):
        write_store(bases, n, work / f"pool-{n}")
    print(f"pools ready ({len(bases)} base variants) in {time.perf_counter() - t0:.0f} s")
    routing = train_model(work, args.preset)
    runs, speed = earlier_runs(args.out, args.preset)
    args.speedup_pool = args.speedup_size if args.speedup_size > 0 else earlier_pool(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)

    def write() -> dict:
        result = merged(args.out, summarise(runs, speed, args, routing), args.preset)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        return result

    for n in sizes:
        runs[n] = screen_pool(work, n, args.workers, args.chunk_size, args.preset)
        write()
    if args.speedup_size > 0:  # new pairs: the file's earlier speed-up runs are replaced
        speed = {1: [], 2: []}
    for _ in range(args.speedup_repeats if args.speedup_size > 0 else 0):
        for w in (1, 2):  # interleaved, so a change in the machine's load hits both
            speed[w].append(screen_pool(work, args.speedup_size, w, args.chunk_size, args.preset))
            write()
    if args.speedup_size > 0 and not args.skip_local:
        speed["local"] = screen_pool_local(work, args.speedup_size, args.chunk_size, args.preset)
    result = write()
    shown = {k: v for k, v in result.items() if not k.endswith(("runs", "dask_runs"))}
    print(json.dumps(shown, indent=2))
    return result


if __name__ == "__main__":
    same_hash_seed()
    main()
