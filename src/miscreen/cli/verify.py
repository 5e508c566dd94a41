"""``miscreen verify``: physics checks of a run's top candidates.

``verify bvse`` adds bond-valence Li migration barriers to the candidate table (seconds per
structure; ``pipeline.verify_bvse_stage``).
``verify md`` runs CHGNet molecular dynamics (``miscreen.verify.md_run``) on this machine
(joblib over candidate x temperature tasks) or as a SLURM job array (one task each, every
task resumable) with a dependent analysis job; ``md-task`` and ``md-analyze`` are what the
SLURM scripts call.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Annotated

import typer

from miscreen.cli.common import ConfigArg, cli_errors, load_config_or_exit
from miscreen.config import Config

app = typer.Typer(
    help="Verify top candidates with physics-based simulations.", no_args_is_help=True
)

# Script names inside the run's slurm/ folder (named once, here).
ARRAY_SCRIPT = "md-array.sh"
ANALYZE_SCRIPT = "md-analyze.sh"

TopOpt = Annotated[int, typer.Option("--top", min=1, help="The N best-ranked candidates.")]
IdsOpt = Annotated[
    list[str] | None,
    typer.Option("--ids", help="Candidate ids instead of --top (repeat, or comma-separated)."),
]
ProtocolOpt = Annotated[
    str, typer.Option(help="quick (a 2-core machine, low statistics) | standard (cluster/GPU)")
]
DeviceOpt = Annotated[str, typer.Option(help="auto (cuda when available) | cpu | cuda")]


def select(cfg: Config, top: int, ids: list[str] | None):
    """-> (MD candidates, failures): the ids given, or the run's ``top`` ranked candidates;
    structures from the configured sources, ML predictions from candidates.parquet."""
    import pandas as pd

    from miscreen import atomic_io
    from miscreen import schema as S
    from miscreen.fetch.parsing import structure_from_json
    from miscreen.fetch.sources import load_candidates
    from miscreen.verify.md import STAGE
    from miscreen.verify.md_run import MDCandidate

    ranked = None
    if cfg.run.candidates_parquet.exists():
        ranked = atomic_io.read_table(cfg.run.candidates_parquet)
    if ids:
        wanted = [i.strip() for part in ids for i in part.split(",") if i.strip()]
    else:
        if ranked is None:
            raise FileNotFoundError(
                f"{cfg.run.candidates_parquet} does not exist: run `miscreen run` first, "
                "or name the candidates with --ids"
            )
        top_rows = ranked[ranked[S.RANK].notna()].sort_values(S.RANK).head(top)
        wanted = [str(i) for i in top_rows[S.ID]]
    predictions = {}
    if ranked is not None:
        for row in ranked[ranked[S.ID].astype(str).isin(wanted)].to_dict("records"):
            values = (row.get(S.PRED), row.get(S.LOWER), row.get(S.UPPER))
            if all(v is not None and pd.notna(v) for v in values):
                predictions[str(row[S.ID])] = tuple(float(v) for v in values)
    records = load_candidates(cfg).records
    records = records[records[S.ID].astype(str).isin(wanted)]
    by_id = {str(r[S.ID]): r for r in records.to_dict("records")}
    chosen, failures = [], []
    for cid in wanted:
        row = by_id.get(cid)
        if row is None or not isinstance(row.get(S.STRUCTURE), str):
            why = "not in the configured sources" if row is None else "has no structure"
            failures.append(
                S.failure(
                    cid, row.get(S.SOURCE, "") if row else "", STAGE, f"candidate {why}: no MD"
                )
            )
            continue
        chosen.append(
            MDCandidate(
                cid,
                structure_from_json(row[S.STRUCTURE]),
                str(row.get(S.SOURCE, "")),
                predictions.get(cid),
            )
        )
    return chosen, pd.DataFrame(failures, columns=list(S.FAILURE_COLUMNS))


def render_scripts(
    cfg: Config,
    config_path: Path,
    n_tasks: int,
    device: str = "auto",
    time: str | None = None,
    gpus: int = 0,
    workdir: Path | None = None,
) -> tuple[str, str]:
    """The job-array script (one task per candidate x temperature) and the analysis
    script, with the resources of ``batch.slurm`` (``time`` and ``gpus`` per MD task)."""
    from miscreen.batch.slurm import _header, miscreen_command

    s = cfg.batch.slurm
    workdir = (workdir or Path.cwd()).resolve()
    log_dir = (workdir / cfg.run.slurm).resolve()
    config = shlex.quote(str(Path(config_path).resolve()))
    exe = miscreen_command()
    throttle = f"%{s.max_parallel}" if s.max_parallel else ""
    threads = "${SLURM_CPUS_PER_TASK:-1}"
    env = [
        "set -euo pipefail",
        *s.setup,
        f"export OMP_NUM_THREADS={threads} MKL_NUM_THREADS={threads}",
    ]
    array = _header(cfg, f"miscreen-md-{cfg.run_name}", time or s.time, s.mem, workdir)
    if gpus:
        array.append(f"#SBATCH --gres=gpu:{gpus}")
    array += [
        f"#SBATCH --array=0-{n_tasks - 1}{throttle}",
        f"#SBATCH --output={log_dir}/md-%A_%a.out",
        "",
        *env,
        "# task i of the plan (results/<run>/md/tasks.json); a killed or timed-out task",
        "# resumes from its last checkpoint when the array is submitted again",
        f"{exe} verify md-task {config} --index $SLURM_ARRAY_TASK_ID --device {device}",
        "",
    ]
    analyze = _header(
        cfg, f"miscreen-md-{cfg.run_name}-analyze", s.merge_time, s.merge_mem, workdir
    )
    analyze += [
        f"#SBATCH --output={log_dir}/md-analyze-%j.out",
        "",
        *env,
        f"{exe} verify md-analyze {config}",
        "",
    ]
    return "\n".join(array), "\n".join(analyze)


@app.command("bvse")
def bvse(
    ctx: typer.Context,
    config: ConfigArg,
    top: Annotated[int, typer.Option("--top", min=1, help="The N best-ranked candidates.")] = 100,
) -> None:
    """BVSE Li migration barriers (1-D, 2-D, 3-D) for the top N ranked candidates; they join
    candidates.csv (screen.barrier_weight lets them count in the score) and the report."""
    from miscreen import schema as S
    from miscreen.pipeline import verify_bvse_stage

    cfg = load_config_or_exit(config)
    with cli_errors(ctx):
        out = verify_bvse_stage(cfg, top)
    checked = out[out[S.BVSE_METHOD].notna()] if S.BVSE_METHOD in out else out.iloc[:0]
    typer.echo(
        f"BVSE barriers for {len(checked)} of the top {top} candidates -> "
        f"{cfg.run.candidates_csv}, {cfg.run.report} (failures: {cfg.run.failures})"
    )


@app.command("md")
def md(
    ctx: typer.Context,
    config: ConfigArg,
    top: TopOpt = 3,
    ids: IdsOpt = None,
    protocol: ProtocolOpt = "quick",
    jobs: Annotated[
        int | None,
        typer.Option(
            min=1, help="Tasks at once on this machine (default SLURM_CPUS_PER_TASK or 1)."
        ),
    ] = None,
    threads: Annotated[int, typer.Option(min=1, help="Torch threads per task.")] = 1,
    device: DeviceOpt = "auto",
    slurm: Annotated[
        bool, typer.Option("--slurm", help="Submit a SLURM job array instead of running here.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the tasks (and SLURM scripts); write nothing.")
    ] = False,
    time: Annotated[
        str | None, typer.Option(help="SLURM time limit per MD task (default batch.slurm.time).")
    ] = None,
    gpus: Annotated[int, typer.Option(min=0, help="GPUs per SLURM task (--gres=gpu:N).")] = 0,
) -> None:
    """MD with CHGNet on the top candidates: Li diffusivity and conductivity per
    temperature, Arrhenius Ea, sigma(300 K) with its interval, and a report section."""
    from miscreen.verify import md as M
    from miscreen.verify import md_run as R

    cfg = load_config_or_exit(config)
    with cli_errors(ctx):
        proto = M.get_protocol(protocol)
        chosen, failures = select(cfg, top, ids)
        if not chosen:
            raise ValueError("no candidate with a structure to simulate")
        n_tasks = R.task_count(len(chosen), proto)
        if dry_run:
            typer.echo(
                f"{len(chosen)} candidates x {len(proto.temperatures_k)} temperatures = "
                f"{n_tasks} tasks ({proto.name}: {R.describe(proto)})"
            )
            for c in chosen:
                typer.echo(
                    f"  {c.id}: {c.structure.composition.reduced_formula}, {len(c.structure)} sites"
                )
            if slurm:
                array, analyze = render_scripts(cfg, config, n_tasks, device, time, gpus)
                typer.echo(f"# --- {ARRAY_SCRIPT}\n{array}\n# --- {ANALYZE_SCRIPT}\n{analyze}")
            return
        run = cfg.run
        the_plan, plan_failures = R.plan(run, chosen, proto, cfg.seed)
        _record(run, failures, plan_failures)
        if not the_plan.tasks:
            raise ValueError("no candidate could be prepared for MD; see failures.csv")
        if slurm:
            _submit(cfg, config, len(the_plan.tasks), device, time, gpus)
            return
        run_failures = R.run_local(
            run, jobs or M.default_threads(), threads, M.resolve_device(device)
        )
        _record(run, failures, plan_failures, run_failures)
        results = R.analyze(run)
        _manifest(cfg, proto.name, len(the_plan.tasks))
        for line in summary_lines(results):
            typer.echo(line)
        typer.echo(
            f"wrote {run.file(R.MD_SUMMARY)} and the report section; "
            f"`miscreen report {config}` shows it"
        )


def _record(run, *tables) -> None:
    """This stage's failures so far (written even when empty, so none of an earlier run's
    stay behind)."""
    from miscreen import schema as S
    from miscreen.verify.md import STAGE

    frames = [t for t in tables if t is not None]
    run.write_failures(STAGE, S.concat(S.empty_failures(), *frames))


def _manifest(cfg: Config, protocol: str, n_tasks: int) -> None:
    cfg.run.update_manifest(
        cfg.model_dump(mode="json"),
        cfg.seed,
        "verify-md",
        {"protocol": protocol, "tasks": n_tasks, "folders": cfg.folders()},
    )


def _submit(
    cfg: Config, config: Path, n_tasks: int, device: str, time: str | None, gpus: int
) -> None:
    from miscreen import atomic_io
    from miscreen.batch.slurm import SubmitError, sbatch

    array, analyze = render_scripts(cfg, config, n_tasks, device, time, gpus)
    folder = Path(cfg.run.slurm)
    folder.mkdir(parents=True, exist_ok=True)
    array_path = atomic_io.write_text(folder / ARRAY_SCRIPT, array)
    analyze_path = atomic_io.write_text(folder / ANALYZE_SCRIPT, analyze)
    typer.echo(f"wrote {array_path} and {analyze_path}")
    try:
        array_id = sbatch(array_path)
        # afterany: the analysis runs even when some tasks hit the time limit; it lists them
        analyze_id = sbatch(analyze_path, f"--dependency=afterany:{array_id}")
    except SubmitError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"submitted MD array {array_id} ({n_tasks} tasks) and analysis job "
        f"{analyze_id} (afterany:{array_id})"
    )


@app.command("md-task")
def md_task(
    ctx: typer.Context,
    config: ConfigArg,
    index: Annotated[
        int | None,
        typer.Option(min=0, help="Task index in the plan (default SLURM_ARRAY_TASK_ID)."),
    ] = None,
    threads: Annotated[
        int | None, typer.Option(min=1, help="Torch threads (default SLURM_CPUS_PER_TASK or 1).")
    ] = None,
    device: DeviceOpt = "auto",
    time_limit_s: Annotated[
        float | None,
        typer.Option(help="Stop cleanly at the first checkpoint after this many seconds."),
    ] = None,
) -> None:
    """Run (or resume) one MD task of the plan: what each SLURM array task calls."""
    from miscreen.verify import md as M
    from miscreen.verify import md_run as R

    cfg = load_config_or_exit(config)
    with cli_errors(ctx):
        if index is None:
            env = os.environ.get("SLURM_ARRAY_TASK_ID")
            if env is None:
                raise typer.BadParameter("give --index (no SLURM_ARRAY_TASK_ID)")
            index = int(env)
        tdir = R.task_dir(cfg.run, R.read_plan(cfg.run), index)
        status = M.run_md_task(
            tdir, M.resolve_device(device), threads or M.default_threads(), time_limit_s
        )
        state = "finished" if status.done else "stopped (run again to resume)"
        typer.echo(
            f"task {index} ({tdir.parent.name} {tdir.name}): step {status.step}/"
            f"{status.total_steps}, {state}"
        )


@app.command("md-analyze")
def md_analyze(ctx: typer.Context, config: ConfigArg) -> None:
    """Analyse the finished MD tasks into tables and the report section."""
    from miscreen.verify import md_run as R

    cfg = load_config_or_exit(config)
    with cli_errors(ctx):
        the_plan = R.read_plan(cfg.run)
        results = R.analyze(cfg.run)
        _manifest(cfg, the_plan.protocol.name, len(the_plan.tasks))
        for line in summary_lines(results):
            typer.echo(line)


def summary_lines(results) -> list[str]:
    """One line per candidate: sigma(300 K) (or its bound), Ea and the hops seen."""
    lines = []
    for r in results:
        a = r.arrhenius
        hops = sum(t.li_hops for t in r.temperatures)
        if a is None:
            pending = ", ".join(f"{t:g}" for t in r.incomplete)
            lines.append(f"{r.id:<24} {r.formula:<14} incomplete (not finished: {pending} K)")
        elif a.sigma_300k_ms_cm is None:
            lines.append(
                f"{r.id:<24} {r.formula:<14} σ(300 K) < "
                f"{a.sigma_300k_upper_bound_ms_cm:.2g} mS/cm (upper bound; "
                f"{hops} Li hops)"
            )
        else:
            lo_hi = a.sigma_300k_interval_ms_cm
            band = f" [{lo_hi[0]:.2g}, {lo_hi[1]:.2g}]" if lo_hi else ""
            se = f" ± {a.ea_stderr_ev:.3f}" if a.ea_stderr_ev is not None else ""
            lines.append(
                f"{r.id:<24} {r.formula:<14} σ(300 K) {a.sigma_300k_ms_cm:.3g}{band} "
                f"mS/cm, Ea {a.ea_ev:.3f}{se} eV, {hops} Li hops"
            )
    return lines
