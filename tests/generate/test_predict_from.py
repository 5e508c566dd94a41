"""``generate.predict_from``: which structure a generated candidate is predicted from, and
the ``prediction_input`` column that records it."""

from __future__ import annotations

import pandas as pd
import pytest
from pymatgen.core import Composition, Lattice, Structure
from typer.testing import CliRunner

from miscreen import schema as S
from miscreen.cli import app
from miscreen.config import ConfigError, GenerateConfig, load_config
from miscreen.fetch.records import structure_record
from miscreen.pipeline import generation
from miscreen.store.structure_json import structure_from_json


def parent() -> Structure:
    """Li2O-like cell whose anion site is half O, half S (a disordered parent)."""
    return Structure(Lattice.cubic(4.6), ["Li", "Li", {"O": 0.5, "S": 0.5}],
                     [[0, 0, 0], [0.5, 0.5, 0], [0.25, 0.25, 0.5]])  # fmt: skip


def relaxed_candidate() -> Structure:
    """The ordered, relaxed O->Se candidate (one Se, one S in a doubled cell)."""
    return Structure(Lattice.orthorhombic(5.0, 5.0, 10.0),
                     ["Li"] * 4 + ["Se", "S"],
                     [[0, 0, 0], [0.5, 0.5, 0], [0, 0, 0.5], [0.5, 0.5, 0.5],
                      [0.25, 0.25, 0.25], [0.25, 0.25, 0.75]])  # fmt: skip


def records() -> pd.DataFrame:
    rows = [
        structure_record("gen:p:O->Se", "generated", relaxed_candidate(), parent_id="p",
                         substitution="O->Se", e_above_hull_ev=0.01),
        structure_record("q", "generated", relaxed_candidate(), parent_id="q",
                         substitution="", e_above_hull_ev=0.0),
    ]  # fmt: skip
    return S.ensure_record_columns(pd.DataFrame(rows))


PLAN = {"parents": {"p": parent().as_dict()}}  # q's parent is not in the plan


def test_the_choice_is_a_config_setting() -> None:
    assert GenerateConfig().predict_from == "substituted_parent"  # the study's default
    assert GenerateConfig(predict_from="relaxed").predict_from == "relaxed"


def test_an_unknown_choice_is_refused(tmp_path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("generate: {predict_from: parent}\n")
    with pytest.raises(ConfigError, match="predict_from"):
        load_config(path)


def test_relaxed_inputs_are_the_records_themselves() -> None:
    out = generation.prediction_inputs(PLAN, records(), "relaxed")
    assert list(out[generation.PREDICTION_INPUT]) == ["relaxed", "relaxed"]
    assert list(out[S.STRUCTURE]) == list(records()[S.STRUCTURE])


def test_substituted_parent_inputs_carry_the_parent_with_the_substitution() -> None:
    out = generation.prediction_inputs(PLAN, records(), "substituted_parent").set_index(S.ID)
    row = out.loc["gen:p:O->Se"]
    assert row[generation.PREDICTION_INPUT] == "substituted_parent"
    cell = structure_from_json(row[S.STRUCTURE])
    assert not cell.is_ordered and len(cell) == 3  # the parent's sites, the mixed one mixed
    assert cell.composition == Composition({"Li": 2, "Se": 0.5, "S": 0.5})
    relaxed = relaxed_candidate()
    assert cell.volume / 3 == pytest.approx(relaxed.volume / len(relaxed))
    assert row["e_above_hull_ev"] == 0.01  # the candidate's other columns travel with it
    # a parent the plan does not hold (a plan written before): the relaxed cell
    assert out.loc["q", generation.PREDICTION_INPUT] == "relaxed"
    assert out.loc["q", S.STRUCTURE] == records().set_index(S.ID).loc["q", S.STRUCTURE]


def test_the_table_keeps_the_relaxed_cells_record_columns() -> None:
    inputs = generation.prediction_inputs(PLAN, records(), "substituted_parent")
    table = inputs.assign(pred=[-3.0, -4.0])
    out = generation.with_record_columns(table, records()).set_index(S.ID)
    want = records().set_index(S.ID)
    assert out.loc["gen:p:O->Se", S.COMPOSITION] == want.loc["gen:p:O->Se", S.COMPOSITION]
    assert out.loc["gen:p:O->Se", S.STRUCTURE] == want.loc["gen:p:O->Se", S.STRUCTURE]
    assert out.loc["gen:p:O->Se", generation.PREDICTION_INPUT] == "substituted_parent"
    assert out.loc["gen:p:O->Se", "pred"] == -3.0


CONFIG = """run_name: from-parent
results_dir: {root}/results
candidates:
  - kind: pymatgen
    names: [Li2O]
generate:
  parents: {{ids: ["pymatgen:Li2O"]}}
  substitutions: {{O: [S]}}
  relax_steps: 2
  drop_known: false
  predict_from: {choice}
"""


@pytest.mark.parametrize("choice", ["relaxed", "substituted_parent"])
def test_generated_csv_records_the_prediction_input_and_both_barriers(tmp_path, choice):
    path = tmp_path / "gen.yaml"
    path.write_text(CONFIG.format(root=tmp_path, choice=choice))
    result = CliRunner().invoke(app, ["generate", str(path)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    cfg = load_config(path)
    assert "pymatgen:Li2O" in generation.read_plan(cfg)["parents"]
    table = pd.read_csv(cfg.run.generated_csv)
    assert set(table[generation.PREDICTION_INPUT]) == {choice}
    assert table[S.BVSE_E3D].notna().all()
    assert (generation.BVSE_RELAXED in table) == (choice == "substituted_parent")


def test_the_case_reports_the_barrier_of_each_input() -> None:
    from miscreen.cases.lgps_family import barriers_by_input

    row = pd.Series({generation.PREDICTION_INPUT: "substituted_parent", S.BVSE_E3D: 0.3,
                     generation.BVSE_RELAXED: 0.5})  # fmt: skip
    assert barriers_by_input(row) == {"substituted_parent": 0.3, "relaxed": 0.5}
    row = pd.Series({generation.PREDICTION_INPUT: "relaxed", S.BVSE_E3D: 0.5})
    assert barriers_by_input(row) == {"relaxed": 0.5}
