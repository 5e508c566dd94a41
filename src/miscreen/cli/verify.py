"""``miscreen verify``: physics checks of a run's top candidates.

``verify bvse`` adds bond-valence Li migration barriers to the candidate table (seconds per
structure). ``verify md`` runs machine-learned-potential molecular dynamics (``--potential``,
at the input's lattice unless ``--cell relaxed``) on this machine (joblib over
candidate x temperature tasks) or as a SLURM job array (one task each, every task
resumable) with a dependent analysis job; ``md-task`` and ``md-analyze`` are what the SLURM
scripts call. The work is in :mod:`miscreen.pipeline.verification`; this module parses the
options and prints what was done.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from miscreen.cli.common import ConfigArg, cli_errors, load_config_or_exit
from miscreen.verify.md_protocol import MD_POTENTIAL

app = typer.Typer(
    help="Verify top candidates with physics-based simulations.", no_args_is_help=True
)

TopOpt = Annotated[int, typer.Option("--top", min=1, help="The N best-ranked candidates.")]
IdsOpt = Annotated[
    list[str] | None,
    typer.Option("--ids", help="Candidate ids instead of --top (repeat, or comma-separated)."),
]
ProtocolOpt = Annotated[
    str, typer.Option(help="quick (a 2-core machine, low statistics) | standard (cluster/GPU)")
]
DeviceOpt = Annotated[str, typer.Option(help="auto (cuda when available) | cpu | cuda")]
PotentialOpt = Annotated[
    str,
    typer.Option(
        help="chgnet | chgnet-r2scan | sevennet-0 | sevennet-l3i5 | sevennet-mf-0 "
        "(weights shipped in their wheels)"
    ),
]
CellOpt = Annotated[
    str,
    typer.Option(
        help="experimental: NVT at the input's lattice (atoms relaxed at fixed cell) | "
        "relaxed: in the cell relaxed with the potential"
    ),
]


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
    potential: PotentialOpt = MD_POTENTIAL,
    cell: CellOpt = "experimental",
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
    """MD with a machine-learned potential on the top candidates: Li diffusivity and
    conductivity per temperature, Arrhenius Ea, sigma(300 K) with its interval, and a report
    section; the expected standard error of Ea is printed before the run starts."""
    from miscreen.pipeline import verification as wiring

    cfg = load_config_or_exit(config)
    with cli_errors(ctx):
        choice = wiring.choose_md(cfg, protocol, top, ids, potential, cell)
        for line in choice.lines():
            typer.echo(line)
        if dry_run:
            if slurm:
                scripts = wiring.md_scripts(cfg, config, choice.tasks, device, time, gpus)
                typer.echo(
                    f"# --- {cfg.run.md_array_script.name}\n{scripts.array}\n"
                    f"# --- {cfg.run.md_analyze_script.name}\n{scripts.then}"
                )
            return
        if slurm:
            done = wiring.submit_md_stage(cfg, config, choice, device, time, gpus)
            typer.echo(f"wrote {done.array_script} and {done.then_script}")
            typer.echo(
                f"submitted MD array {done.array_id} ({done.tasks} tasks) and analysis job "
                f"{done.then_id} (afterany:{done.array_id})"
            )
            return
        results = wiring.verify_md_stage(cfg, choice, jobs, threads, device)
        for line in wiring.summary_lines(results):
            typer.echo(line)
        typer.echo(
            f"wrote {cfg.run.md_summary} and the report section; "
            f"`miscreen report {config}` shows it"
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
    from miscreen.pipeline.verification import md_task as run_task

    cfg = load_config_or_exit(config)
    if index is None:
        env = os.environ.get("SLURM_ARRAY_TASK_ID")
        if env is None:
            raise typer.BadParameter("give --index (no SLURM_ARRAY_TASK_ID)")
        index = int(env)
    with cli_errors(ctx):
        tdir, status = run_task(cfg, index, threads, device, time_limit_s)
    state = "finished" if status.done else "stopped (run again to resume)"
    typer.echo(
        f"task {index} ({tdir.parent.name} {tdir.name}): step {status.step}/"
        f"{status.total_steps}, {state}"
    )


@app.command("md-analyze")
def md_analyze(ctx: typer.Context, config: ConfigArg) -> None:
    """Analyse the finished MD tasks into tables and the report section."""
    from miscreen.pipeline.verification import analyze_md, summary_lines

    cfg = load_config_or_exit(config)
    with cli_errors(ctx):
        results = analyze_md(cfg)
    for line in summary_lines(results):
        typer.echo(line)
