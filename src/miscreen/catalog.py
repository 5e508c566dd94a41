"""The run catalog: one place that names every artifact of a run folder and a model folder.

Stages, case studies, benchmarks and batch code ask a :class:`RunCatalog` or
:class:`ModelCatalog` for paths; no artifact's file name is spelled anywhere else. The few
writers that several stages share (failures, manifest, report sections) live here too and
write atomically through :mod:`miscreen.atomic_io`.

Run folder (``results/<run_name>/``)::

    candidates.csv / candidates.parquet   ranked candidates
    metrics.json, test_predictions.csv    evaluation on the test split
    failures.csv                          every row that could not be used, with a reason
    stages/<stage>_failures.parquet       the same, per stage
    manifest.json                         config, inputs + sha256, versions, per-stage entries
    report.html, figures/                 the report
    sections/<order>-<name>.html          report sections contributed by other stages
    feature_importance.csv                permutation importances (cached)
    known_materials.parquet               the run's measured (labelled) materials
    suggestions.csv, campaign.jsonl       the next experiments to make, and each round's log
    md/tasks.json, md/<candidate>/        verify md: the plan, and each candidate's task folders
    md_temperatures.csv, md_summary.csv   verify md: per temperature, per candidate
    md_results.json                       verify md: everything, with MSD curves
    case.json                             a case study's headline numbers
    generate/plan.json, generate/relaxed/ generate: the candidates, one relaxation file each
    generated.csv / generated.parquet     generate: the new candidates, predicted and placed
    generated_store/                      generate: the same as a structure store (a source)
    shards/                               batch screening state
    slurm/                                job scripts (screen-array.sh, merge.sh, md-array.sh,
                                          md-analyze.sh, generate-array.sh, generate-finish.sh)
                                          and their logs
    extra files a case study names through :meth:`RunCatalog.file`

Model folder (``models/<run_name>/``)::

    routing.json                          which model serves which row kind
    <model>/model.skops, model.json, MODEL_CARD.md
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from miscreen import atomic_io
from miscreen import schema as S

log = logging.getLogger(__name__)

_SECTION_NAME = re.compile(r"^[a-z0-9_-]+$")


@dataclass(frozen=True)
class ModelFolder:
    """One trained model: estimator file, metadata and model card."""

    root: Path

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def estimator(self) -> Path:
        return self.root / "model.skops"

    @property
    def meta(self) -> Path:
        return self.root / "model.json"

    @property
    def card(self) -> Path:
        return self.root / "MODEL_CARD.md"


@dataclass(frozen=True)
class ModelCatalog:
    """A trained run's model folder: its models and their routing."""

    root: Path

    @property
    def routing(self) -> Path:
        return self.root / "routing.json"

    def model(self, name: str) -> ModelFolder:
        return ModelFolder(self.root / name)


@dataclass(frozen=True)
class ShardFiles:
    """One screening shard's files under ``shards/`` (``miscreen.batch`` screens and merges)."""

    root: Path  # the run's shards folder
    name: str  # e.g. shard-0003-of-0010

    parts = property(lambda self: self.root / f"{self.name}.parts")  # chunk checkpoints
    table = property(lambda self: self.root / f"{self.name}.parquet")
    failures = property(lambda self: self.root / f"{self.name}.failures.parquet")
    done = property(lambda self: self.root / f"{self.name}.json")  # written last
    key = property(lambda self: self.parts / "key.txt")  # the run key of the checkpoints

    def chunk(self, k: int) -> tuple[Path, Path]:
        """Chunk ``k``'s checkpoint: (predictions, failures)."""
        name = f"chunk-{k:06d}"
        return self.parts / f"{name}.parquet", self.parts / f"{name}.failures.parquet"


@dataclass(frozen=True)
class RunCatalog:
    """A run folder and every artifact in it."""

    root: Path

    candidates_csv = property(lambda self: self.root / "candidates.csv")
    candidates_parquet = property(lambda self: self.root / "candidates.parquet")
    metrics = property(lambda self: self.root / "metrics.json")
    test_predictions = property(lambda self: self.root / "test_predictions.csv")
    failures = property(lambda self: self.root / "failures.csv")
    manifest = property(lambda self: self.root / "manifest.json")
    report = property(lambda self: self.root / "report.html")
    figures = property(lambda self: self.root / "figures")
    sections = property(lambda self: self.root / "sections")
    importances = property(lambda self: self.root / "feature_importance.csv")
    known_materials = property(lambda self: self.root / "known_materials.parquet")
    case_json = property(lambda self: self.root / "case.json")  # a case study's numbers
    suggestions = property(lambda self: self.root / "suggestions.csv")
    campaign = property(lambda self: self.root / "campaign.jsonl")
    md = property(lambda self: self.root / "md")  # verify md: one folder per candidate
    md_plan = property(lambda self: self.root / "md" / "tasks.json")
    md_temperatures = property(lambda self: self.root / "md_temperatures.csv")
    md_summary = property(lambda self: self.root / "md_summary.csv")
    md_results = property(lambda self: self.root / "md_results.json")
    shards = property(lambda self: self.root / "shards")
    slurm = property(lambda self: self.root / "slurm")
    stages = property(lambda self: self.root / "stages")
    screen_array_script = property(lambda self: self.slurm / "screen-array.sh")
    merge_script = property(lambda self: self.slurm / "merge.sh")
    md_array_script = property(lambda self: self.slurm / "md-array.sh")
    md_analyze_script = property(lambda self: self.slurm / "md-analyze.sh")
    generate = property(lambda self: self.root / "generate")  # generate: plan, relaxations
    generate_plan = property(lambda self: self.root / "generate" / "plan.json")
    generate_relaxed = property(lambda self: self.root / "generate" / "relaxed")
    generated_csv = property(lambda self: self.root / "generated.csv")
    generated_parquet = property(lambda self: self.root / "generated.parquet")
    generated_store = property(lambda self: self.root / "generated_store")
    generate_array_script = property(lambda self: self.slurm / "generate-array.sh")
    generate_finish_script = property(lambda self: self.slurm / "generate-finish.sh")

    def shard(self, index: int, count: int) -> ShardFiles:
        """The files of shard ``index`` (0-based) of ``count``."""
        return ShardFiles(self.shards, f"shard-{index:04d}-of-{count:04d}")

    def finished_shards(self) -> list[Path]:
        """The ``.json`` files of every finished shard, sorted."""
        return sorted(self.shards.glob("shard-*-of-*.json"))

    def stage_failures(self, stage: str) -> Path:
        return self.stages / f"{stage}_failures.parquet"

    def file(self, name: str) -> Path:
        """A further artifact a stage or case study owns (its module names it once)."""
        if Path(name).name != name:
            raise ValueError(f"artifact names are plain file names, got {name!r}")
        return self.root / name

    # ------------------------------------------------------------ shared writers

    def write_failures(self, stage: str, failures: pd.DataFrame) -> None:
        """Keep one stage's failures and rewrite the union of all stages as failures.csv."""
        failures = failures.reindex(columns=list(S.FAILURE_COLUMNS)).drop_duplicates()
        atomic_io.write_table(failures.reset_index(drop=True), self.stage_failures(stage))
        for f in failures.itertuples(index=False):
            log.warning("skipped %s (%s, %s): %s", f.id, f.source, f.stage, f.reason)
        parts = [atomic_io.read_table(p) for p in sorted(self.stages.glob("*_failures.parquet"))]
        atomic_io.write_table(S.concat(S.empty_failures(), *parts), self.failures)

    def update_manifest(self, config: dict[str, Any], seed: int, stage: str, entry: dict) -> None:
        """Record one stage's entry (inputs, models, counts) in ``manifest.json``."""
        manifest = atomic_io.read_json(self.manifest) if self.manifest.exists() else {}
        base = atomic_io.base_manifest(config, seed)
        manifest.update({k: v for k, v in base.items() if k != "created_at"})
        manifest.setdefault("created_at", base["created_at"])
        manifest.setdefault("stages", {})[stage] = {**entry, "finished_at": atomic_io.now_utc()}
        atomic_io.write_json(self.manifest, manifest)

    def write_section(self, name: str, html: str, order: int = 50) -> Path:
        """A report section contributed by a stage or case study: an HTML fragment that
        ``miscreen.report`` embeds, in ``order``, after its own sections."""
        if not _SECTION_NAME.match(name):
            raise ValueError(f"section names are lower-case words, got {name!r}")
        for old in self.sections.glob(f"*-{name}.html"):
            old.unlink()
        return atomic_io.write_text(self.sections / f"{order:02d}-{name}.html", html)

    def read_sections(self) -> list[str]:
        """The contributed report sections, in order."""
        return [p.read_text(encoding="utf-8") for p in sorted(self.sections.glob("*.html"))]


def unique_inputs(entries: list[dict]) -> list[dict]:
    """Input-file entries without repeats (by path), in first-seen order."""
    seen, out = set(), []
    for e in entries:
        key = e.get("path")
        if key not in seen:
            seen.add(key)
            out.append(e)
    return out
