"""``miscreen generate --dry-run`` and the ``generate:`` config section."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from miscreen.cli import app
from miscreen.config import ConfigError, load_config

CONFIG = """run_name: dry
results_dir: {root}/results
candidates:
  - kind: pymatgen
    names: [Li2O]
generate:
  parents: {{ids: ["pymatgen:Li2O"]}}
  substitutions: {{O: [S, N]}}
"""


def test_a_dry_run_lists_the_plan_and_what_is_skipped(tmp_path):
    path = tmp_path / "dry.yaml"
    path.write_text(CONFIG.format(root=tmp_path))
    result = CliRunner().invoke(app, ["generate", str(path), "--dry-run"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "gen:pymatgen:Li2O:O->S (parent pymatgen:Li2O, p=" in result.output
    assert "skipped pymatgen:Li2O O->N: changes the charge by -1 per cell" in result.output
    cfg = load_config(path)
    assert cfg.run.generate_plan.exists() and not cfg.run.generated_csv.exists()


def test_the_generate_section_refuses_unknown_keys_and_bad_values(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("generate: {relax_step: 10}\n")
    with pytest.raises(ConfigError, match="relax_step"):
        load_config(path)
    path.write_text("generate: {fmax: 0}\n")
    with pytest.raises(ConfigError, match="fmax"):
        load_config(path)


def test_an_unknown_potential_stops_generate_before_any_plan(tmp_path):
    path = tmp_path / "pot.yaml"
    path.write_text(CONFIG.format(root=tmp_path) + "  potential: mace\n")
    result = CliRunner().invoke(app, ["generate", str(path), "--dry-run"])
    assert result.exit_code == 1
    assert "unknown potential 'mace'" in result.output and "sevennet-0" in result.output
    assert not load_config(path).run.generate_plan.exists()


STORE = """run_name: again
results_dir: {root}/results
candidates:
  - kind: store
    path: {store}
"""


def test_generated_candidates_are_a_source_like_any_other(tmp_path):
    """``miscreen generate`` without trained models: relaxed, on the hull, with BVSE
    barriers; its store is then read back as a candidate source."""
    from miscreen.fetch.sources import load_candidates

    path = tmp_path / "gen.yaml"
    text = CONFIG.format(root=tmp_path).replace("[S, N]", "[S]")
    path.write_text(text + "  relax_steps: 2\n  drop_known: false\n")
    result = CliRunner().invoke(app, ["generate", str(path)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "gen:pymatgen:Li2O:O->S: Li2S, E_hull" in result.output
    cfg = load_config(path)
    again = tmp_path / "again.yaml"
    again.write_text(STORE.format(root=tmp_path, store=cfg.run.generated_store))
    records = load_candidates(load_config(again)).records
    assert sorted(records["id"]) == ["gen:pymatgen:Li2O:O->S", "pymatgen:Li2O"]
    assert records["structure"].map(lambda s: isinstance(s, str) and len(s) > 0).all()


@pytest.mark.parametrize(
    ("config_text", "args", "where"),
    [
        ("", (None, None), "local"),
        ("batch: {backend: dask}\n", (None, None), "dask"),  # as miscreen screen
        ("batch: {backend: dask}\ngenerate: {backend: local}\n", (None, None), "local"),
        ("generate: {backend: slurm}\n", (None, None), "slurm"),
        ("generate: {backend: dask}\n", (None, None), "dask"),
        ("generate: {backend: slurm}\n", (None, "tcp://127.0.0.1:8786"), "dask"),
        ("batch: {backend: dask}\n", ("local", "tcp://127.0.0.1:8786"), "local"),
    ],
)
def test_where_the_relaxations_run(tmp_path, config_text, args, where):
    from miscreen.pipeline.generation_jobs import relax_backend

    path = tmp_path / "where.yaml"
    path.write_text(config_text)
    assert relax_backend(load_config(path), *args) == where


def test_bad_backend_options_are_refused(tmp_path):
    path = tmp_path / "dry.yaml"
    path.write_text(CONFIG.format(root=tmp_path))
    result = CliRunner().invoke(app, ["generate", str(path), "--backend", "mpi"])
    assert result.exit_code == 2 and "local, slurm or dask, got 'mpi'" in result.output
    result = CliRunner().invoke(app, ["generate", str(path), "--backend", "dask", "--local"])
    assert result.exit_code == 2 and "--backend dask contradicts --local" in result.output
    result = CliRunner().invoke(app, ["generate", str(path), "--backend", "dask"])
    assert result.exit_code == 1 and "--scheduler ADDRESS" in result.output


LI4GES4 = """run_name: alio
results_dir: {root}/results
candidates:
  - kind: pymatgen
    names: [Li2O]
generate:
  parents: {{files: ["{root}/li4ges4.json"]}}
  substitutions: {{Ge: [Al]}}
  aliovalent: true
  relax_steps: 1
  drop_known: false
  bvse: false
"""


def test_generated_rows_say_how_many_li_were_added_and_where(tmp_path):
    """An aliovalent candidate's Li change and interstitial sites reach ``generated.csv``."""
    import json

    import pandas as pd

    from tests.generate.test_interstitial import li4ges4

    li4ges4().to(filename=str(tmp_path / "li4ges4.json"))
    path = tmp_path / "alio.yaml"
    path.write_text(LI4GES4.format(root=tmp_path))
    result = CliRunner().invoke(app, ["generate", str(path)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    table = pd.read_csv(load_config(path).run.generated_csv).set_index("substitution")
    al = table.loc["Ge->Al,Li+1"]
    assert al["li_change"] == 1
    (site,) = json.loads(al["li_added"])
    assert len(site["frac_coords"]) == 3 and site["site_energy_ev"] >= 0
    parent = table[table["is_parent"]].iloc[0]
    assert parent["li_change"] == 0 and json.loads(parent["li_added"]) == []
