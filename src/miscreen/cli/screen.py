"""``miscreen screen`` and ``miscreen merge``: predict candidates, sharded or whole, locally
or on Dask, then rank them; ``miscreen slurm`` (see ``cli/slurm.py``) is registered here."""

from __future__ import annotations

from typing import Annotated

import typer

from miscreen.cli.common import ConfigArg, cli_errors, load_config_or_exit

ShardOpt = Annotated[
    str | None,
    typer.Option(
        "--shard",
        help="Screen only shard INDEX/COUNT (0-based, e.g. 3/10); default: the SLURM array "
        "task's shard, else the whole pool followed by a merge.",
    ),
]
BackendOpt = Annotated[
    str | None,
    typer.Option(help="local (this process) or dask; default batch.backend of the config."),
]
SchedulerOpt = Annotated[
    str | None, typer.Option(help="Dask scheduler address, e.g. tcp://10.0.0.5:8786.")
]
ChunkOpt = Annotated[
    int | None, typer.Option(min=1, help="Candidates per checkpointed chunk (batch.chunk_size).")
]


def screen(
    ctx: typer.Context,
    config: ConfigArg,
    shard: ShardOpt = None,
    backend: BackendOpt = None,
    scheduler: SchedulerOpt = None,
    chunk_size: ChunkOpt = None,
) -> None:
    """Predict and rank the configured candidates with the run's trained models."""
    from miscreen import batch

    cfg = load_config_or_exit(config)
    if chunk_size is not None:
        cfg = cfg.model_copy(
            update={"batch": cfg.batch.model_copy(update={"chunk_size": chunk_size})}
        )
    if backend not in (None, "local", "dask"):
        raise typer.BadParameter(f"--backend must be local or dask, got {backend!r}")
    if scheduler and backend is None:
        backend = "dask"
    try:
        spec = batch.parse_shard(shard) if shard else batch.shard_from_env()
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    with cli_errors(ctx), batch.backend_for(cfg, backend, scheduler) as executor:  # type: ignore[arg-type]
        if spec is None:
            ranked = batch.screen_all(cfg, executor)
            typer.echo(f"ranked {int(ranked['rank'].notna().sum())} of {len(ranked)} candidates")
            return
        done = batch.screen_shard(cfg, spec, executor)
    state = "was already finished" if done.skipped else "finished"
    typer.echo(
        f"shard {spec} {state}: {done.rows} candidates, {done.failures} failures; "
        f"run `miscreen merge {config}` once all {spec.count} shards are done"
    )


def merge(
    ctx: typer.Context,
    config: ConfigArg,
    shards: Annotated[
        int | None, typer.Option(min=1, help="Shard count N (default: the complete set found).")
    ] = None,
) -> None:
    """Rank every shard's predictions together into candidates.csv/.parquet and failures.csv."""
    from miscreen import batch

    cfg = load_config_or_exit(config)
    with cli_errors(ctx):
        ranked = batch.merge_shards(cfg, shards)
    typer.echo(f"ranked {int(ranked['rank'].notna().sum())} of {len(ranked)} candidates")


def register(app: typer.Typer) -> None:
    from miscreen.cli.slurm import app as slurm_app

    app.command()(screen)
    app.command()(merge)
    app.add_typer(slurm_app, name="slurm")
