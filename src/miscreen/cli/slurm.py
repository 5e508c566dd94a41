"""``miscreen slurm submit``: a job array of screening shards plus a dependent merge job."""

from __future__ import annotations

from typing import Annotated

import typer

from miscreen.cli.common import ConfigArg, load_config_or_exit

app = typer.Typer(help="Run screening as a SLURM job array.", no_args_is_help=True)


@app.command("submit")
def submit(
    config: ConfigArg,
    shards: Annotated[
        int | None, typer.Option(min=1, help="Array size N (default batch.slurm.shards).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the scripts; write and submit nothing.")
    ] = False,
) -> None:
    """Write results/<run>/slurm/screen-array.sh and merge.sh, and submit them with sbatch."""
    from miscreen.batch import slurm

    cfg = load_config_or_exit(config)
    scripts = slurm.render(cfg, config, shards)
    if dry_run:
        typer.echo("# --- screen-array.sh\n" + scripts.array + "\n# --- merge.sh\n" + scripts.merge)
        return
    array, merge = slurm.write_scripts(cfg, scripts)
    typer.echo(f"wrote {array} and {merge}")
    try:
        array_id, merge_id = slurm.submit(array, merge)
    except slurm.SubmitError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"submitted job array {array_id} and merge job {merge_id} (afterok:{array_id})")
