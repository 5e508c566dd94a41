"""``miscreen slurm submit``: a job array of screening shards plus a dependent merge job
(``miscreen slurm merge``, what that job runs)."""

from __future__ import annotations

from typing import Annotated

import typer

from miscreen.cli.common import ConfigArg, cli_errors, load_config_or_exit

app = typer.Typer(help="Run screening as a SLURM job array.", no_args_is_help=True)


@app.command("submit")
def submit(
    ctx: typer.Context,
    config: ConfigArg,
    shards: Annotated[
        int | None, typer.Option(min=1, help="Array size N (default batch.slurm.shards).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the scripts; write and submit nothing.")
    ] = False,
) -> None:
    """Write results/<run>/slurm/screen-array.sh and merge.sh, and submit them with sbatch
    (after checking that the run's models are trained and load). The merge runs once every
    task ended; if one failed or was cancelled it fails naming the missing shards, and
    submitting again resumes them (finished shards are skipped)."""
    from miscreen.batch import slurm

    cfg = load_config_or_exit(config)
    scripts = slurm.screening_scripts(cfg, config, shards)
    if dry_run:
        typer.echo(
            f"# --- {cfg.run.screen_array_script.name}\n{scripts.array}\n"
            f"# --- {cfg.run.merge_script.name}\n{scripts.then}"
        )
        return
    with cli_errors(ctx):
        slurm.check_trained(cfg)
        array, merge = slurm.write_scripts(
            scripts, cfg.run.screen_array_script, cfg.run.merge_script
        )
        typer.echo(f"wrote {array} and {merge}")
        array_id, merge_id = slurm.submit(array, merge)
    typer.echo(f"submitted job array {array_id} and merge job {merge_id} (afterany:{array_id})")


@app.command("merge")
def merge(
    ctx: typer.Context,
    config: ConfigArg,
    shards: Annotated[int, typer.Option(min=1, help="Array size N (one shard per task).")],
) -> None:
    """What the merge job runs: `miscreen merge CONFIG --shards N`; shards a failed or
    cancelled task left unfinished are an error naming the task, its log and how to resume."""
    from miscreen.batch import slurm
    from miscreen.pipeline.screening import ranked_count

    cfg = load_config_or_exit(config)
    with cli_errors(ctx):
        ranked = slurm.merge_array(cfg, config, shards)
    typer.echo(ranked_count(ranked))
