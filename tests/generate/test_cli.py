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
