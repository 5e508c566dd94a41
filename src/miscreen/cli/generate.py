"""``miscreen generate``: new candidates by substitution, relaxed (here, as a SLURM array or on
a Dask cluster) and placed on the hull by a universal potential, then predicted and scored;
``generate-task`` and ``generate-finish`` are what its SLURM array and finish job run."""

from __future__ import annotations

from typing import Annotated

import typer

from miscreen.cli.common import ConfigArg, cli_errors, load_config_or_exit


def generate(
    ctx: typer.Context,
    config: ConfigArg,
    slurm: Annotated[
        bool | None,
        typer.Option(
            "--slurm/--local",
            help="Submit a SLURM job array (one relaxation per task) instead of running here "
            "(same as --backend slurm / --backend local).",
        ),
    ] = None,
    backend: Annotated[
        str | None,
        typer.Option(
            help="local (here, --jobs processes), slurm (a job array) or dask (one task per "
            "relaxation); default generate.backend, else batch.backend of the config."
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            help="Dask scheduler address, e.g. tcp://10.0.0.5:8786 (implies --backend dask; "
            "default batch.dask)."
        ),
    ] = None,
    jobs: Annotated[
        int | None, typer.Option(min=1, help="relaxation processes here (generate.jobs)")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Write the plan and list the candidates only.")
    ] = False,
) -> None:
    """Generate candidates from the configured parents (results/<run>/generated.csv)."""
    from miscreen.pipeline import generation, generation_jobs

    cfg = load_config_or_exit(config)
    flag = None if slurm is None else "slurm" if slurm else "local"
    if backend not in (None, "local", "slurm", "dask"):
        raise typer.BadParameter(f"--backend must be local, slurm or dask, got {backend!r}")
    if backend and flag and backend != flag:
        raise typer.BadParameter(f"--backend {backend} contradicts --{flag}")
    where = generation_jobs.relax_backend(cfg, backend or flag, scheduler)
    with cli_errors(ctx):
        if dry_run:
            plan = generation.plan_generation(cfg)
            for c in plan["candidates"]:
                typer.echo(
                    f"{c['id']} (parent {c['parent_id']}, p={c['substitution_probability']})"
                )
            for d in plan["dropped"]:
                typer.echo(f"dropped {d['id']}: {d['known_duplicate']}")
            for s in plan["skipped"]:
                typer.echo(f"skipped {s['parent_id']} {s['substitution']}: {s['reason']}")
            return
        if where == "slurm":
            sub = generation_jobs.submit_generation(cfg, config)
            typer.echo(
                f"submitted generate array {sub.array_id} ({sub.tasks} tasks) and finish job "
                f"{sub.then_id} (afterany:{sub.array_id}); scripts in {sub.array_script.parent}"
            )
            return
        table = generation_jobs.generate_stage(cfg, jobs, backend=where, scheduler=scheduler)
    typer.echo("\n".join(generation.generated_lines(table)))
    typer.echo(f"wrote {cfg.run.generated_csv} and the store {cfg.run.generated_store}")


def generate_task(
    ctx: typer.Context,
    config: ConfigArg,
    index: Annotated[int, typer.Option(min=0, help="candidate of the plan (the array task)")],
) -> None:
    """Relax one candidate of the plan (a SLURM array task; skipped when done)."""
    from miscreen.pipeline.generation_jobs import relax_task

    cfg = load_config_or_exit(config)
    with cli_errors(ctx):
        r = relax_task(cfg, index)
    typer.echo(
        f"candidate {index}: {r.energy_ev_per_atom:.4f} eV/atom, max force "
        f"{r.max_force_ev_a:.3f} eV/Å, {r.steps} steps, {r.stopped}"
    )


def generate_finish(ctx: typer.Context, config: ConfigArg) -> None:
    """Hull, prediction and BVSE of the relaxed candidates (the SLURM finish job)."""
    from miscreen.pipeline.generation import finish_generation, generated_lines

    cfg = load_config_or_exit(config)
    with cli_errors(ctx):
        table = finish_generation(cfg)
    typer.echo("\n".join(generated_lines(table)))
    typer.echo(f"wrote {cfg.run.generated_csv}")


def register(app: typer.Typer) -> None:
    app.command("generate")(generate)
    app.command("generate-task")(generate_task)
    app.command("generate-finish")(generate_finish)
