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
    from miscreen.batch import ShardResult
    from miscreen.pipeline.screening import (
        ranked_count,
        screen_pool,
        shard_to_screen,
        with_chunk_size,
    )

    cfg = with_chunk_size(load_config_or_exit(config), chunk_size)
    if backend not in (None, "local", "dask"):
        raise typer.BadParameter(f"--backend must be local or dask, got {backend!r}")
    if scheduler and backend is None:
        backend = "dask"
    try:
        spec = shard_to_screen(shard)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    with cli_errors(ctx):
        done = screen_pool(cfg, spec, backend, scheduler)
    if not isinstance(done, ShardResult):
        typer.echo(ranked_count(done))
        return
    state = "was already finished" if done.skipped else "finished"
    typer.echo(
        f"shard {done.shard} {state}: {done.rows} candidates, {done.failures} failures; "
        f"run `miscreen merge {config}` once all {done.shard.count} shards are done"
    )


def merge(
    ctx: typer.Context,
    config: ConfigArg,
    shards: Annotated[
        int | None, typer.Option(min=1, help="Shard count N (default: the complete set found).")
    ] = None,
) -> None:
    """Rank every shard's predictions together into candidates.csv/.parquet and failures.csv."""
    from miscreen.batch import merge_shards
    from miscreen.pipeline.screening import ranked_count

    cfg = load_config_or_exit(config)
    with cli_errors(ctx):
        ranked = merge_shards(cfg, shards)
    typer.echo(ranked_count(ranked))


def register(app: typer.Typer) -> None:
    from miscreen.cli.slurm import app as slurm_app

    app.command()(screen)
    app.command()(merge)
    app.add_typer(slurm_app, name="slurm")
