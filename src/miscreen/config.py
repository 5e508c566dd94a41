"""Run configuration: a YAML file validated by pydantic.

Unknown keys and bad values are errors that name the key and the file. Every number has
bounds, and a value outside them is refused with the reason for the bound (see
:func:`bounded`); floats must be finite. Folders that exist as files are refused with
their key. The YAML itself is read with limits (:mod:`miscreen.yaml_loader`), and error
messages show short excerpts of bad values, never their whole text.
"""

from __future__ import annotations

import difflib
import math
import os
import reprlib
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.fields import FieldInfo

from miscreen.catalog import ModelCatalog, RunCatalog
from miscreen.errors import ConfigError
from miscreen.yaml_loader import (
    MAX_ALIASES,
    MAX_CONFIG_BYTES,
    MAX_DEPTH,
    MAX_NODES,
    read_yaml_file,
    safe_yaml,
    shorten,
)

__all__ = [
    "MAX_ALIASES",
    "MAX_CONFIG_BYTES",
    "MAX_DEPTH",
    "MAX_NODES",
    "Config",
    "ConfigError",
    "load_config",
    "safe_yaml",
]

MAX_SEED = 2**32  # numpy and scikit-learn take seeds in [0, 2**32)
DAY_S = 86_400.0


def bounded(default: Any, why: str, **bounds: Any) -> Any:
    """A pydantic field with ``bounds`` (``ge``, ``le``, ...) whose reason ``why`` is added
    to the error message when a config value is outside them."""
    return Field(default=default, description=why, **bounds)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ObelixSource(_Strict):
    kind: Literal["obelix"] = "obelix"
    split: Literal["all", "train", "test"] = "test"
    families: tuple[str, ...] = ()  # keep only these families (empty: all)
    exclude_families: tuple[str, ...] = ()
    require_structure: bool = False  # keep only rows with a CIF


class PymatgenSource(_Strict):
    kind: Literal["pymatgen"] = "pymatgen"
    names: tuple[str, ...] = ("Li10GeP2S12", "LiFePO4", "Li2O", "Li3V2(PO4)3")


class JsonlSource(_Strict):
    kind: Literal["jsonl"] = "jsonl"
    path: Path | None = None
    dataset: str | None = None  # a registered dataset instead of a path, e.g. "mp-2018"
    id_field: str = "material_id"
    id_prefix: str = ""
    require_elements: tuple[str, ...] = ("Li",)


class CifDirSource(_Strict):
    kind: Literal["cif_dir"] = "cif_dir"
    path: Path


class CsvSource(_Strict):
    kind: Literal["csv"] = "csv"
    path: Path
    allow_outside: bool = False  # CIF paths may point outside the CSV's folder
    trust_cif: bool = False  # a CIF whose composition disagrees with the row's is used anyway


class StoreSource(_Strict):
    kind: Literal["store"] = "store"
    path: Path


CandidateSource = Annotated[
    ObelixSource | PymatgenSource | JsonlSource | CifDirSource | CsvSource | StoreSource,
    Field(discriminator="kind"),
]


class DataConfig(_Strict):
    train: Literal["obelix"] | Path = "obelix"
    train_split: Literal["all", "train", "test"] = "train"
    test_split: Literal["all", "train", "test"] | None = "test"
    exclude_families: tuple[str, ...] = ()
    # more labelled CSVs (the `miscreen train --data` format) added to the training rows,
    # e.g. the measurements of suggested materials; their ids are kept
    extra: tuple[Path, ...] = ()
    # censored labels ("<1E-10"): at their bound, chosen by new-chemistry CV on the training
    # split (benchmarks/model_research.py); floor = -15 as upstream; drop = left out
    censored: Literal["floor", "bound", "drop"] = "bound"
    target: str = "log10_sigma"
    allow_outside: bool = False  # labelled CSVs' CIF paths may point outside their folder
    trust_cif: bool = False  # a CIF whose composition disagrees with its row's is used anyway


class FeaturesConfig(_Strict):
    preset: Literal["composition", "cell", "structure", "li_conductor", "full", "full_chgnet"] = (
        "full"
    )
    jobs: int | None = bounded(None, "featurizing processes on one machine", ge=1, le=1024)
    # wall-clock limit per structure; a structure over it goes to failures, the rest go on
    time_limit_s: float = bounded(
        60.0,
        "seconds per structure: below 0.1 s no structure can finish (and the timer would "
        "fire faster than it is handled), above a day it is no limit",
        ge=0.1,
        le=DAY_S,
    )


ModelKind = Literal["extra_trees", "random_forest", "hist_gradient_boosting", "ensemble"]
MODEL_KINDS: tuple[str, ...] = get_args(ModelKind)


class ModelConfig(_Strict):
    kind: ModelKind = "ensemble"
    n_estimators: int = bounded(
        500, "trees per model: more than 10,000 cost memory and time for no gain", ge=10, le=10_000
    )
    cv_folds: int = bounded(5, "cross-validation folds, each costing a fit", ge=2, le=50)
    tune: bool = True  # grid-search the kind's hyperparameters by grouped CV (train split)
    # hyperparameters applied when not tuning, e.g. those a search chose and recorded
    hyperparameters: dict[str, float | int | str | None] = {}
    interval: float = Field(default=0.8, gt=0, lt=1)


_WEIGHT = "a score weight in log10 S/cm per unit; beyond 100 this term alone ranks"


class ScreenConfig(_Strict):
    top_k: int = bounded(25, "candidates listed in the report", ge=1, le=10_000)
    require_elements: tuple[str, ...] = ("Li",)
    # at least one of these (e.g. the anions of electrolytes: leaves out alloys and
    # intermetallics, which conduct electrons); empty: no such filter
    require_any_elements: tuple[str, ...] = ()
    exclude_elements: tuple[str, ...] = ()
    max_e_above_hull: float | None = bounded(None, "eV/atom above the hull", ge=0, le=100)
    # the source's band gap, else an estimate (band_gap_method), when set
    min_band_gap: float | None = bounded(None, "band gap in eV", ge=0, le=100)
    max_sites: int | None = bounded(None, "sites per cell", ge=1, le=1_000_000)
    min_li_fraction: float | None = Field(default=None, ge=0, le=1)  # atomic fraction of Li
    # p_fast: the probability that sigma(300 K) >= fast_sigma (the model's conformal
    # predictive distribution); mean | lower (risk-averse) | upper (exploratory): log10 sigma
    score: Literal["p_fast", "mean", "lower", "upper"] = "p_fast"
    fast_sigma: float = bounded(1e-4, "S/cm, a room-temperature conductivity", gt=0, le=1e3)
    # a row whose band gap is an estimate is removed only when P(gap >= min_band_gap) is
    # below this (a row is not removed on a coin flip)
    min_p_band_gap: float = Field(default=0.1, ge=0, le=1)
    # leave out redox-active transition metals (miscreen.screen.redox.REDOX_ACTIVE, or
    # redox_elements when given)
    exclude_redox: bool = False
    redox_elements: tuple[str, ...] | None = None
    # stability estimated (snapshot match, else a CHGNet hull) for at most this many of the
    # best rows whose source gives none; 0: none
    stability_top: int = bounded(0, "rows whose stability is estimated", ge=0, le=1_000_000)
    # BVSE barriers for this many of the best-ranked rows in the main job; 0: none
    bvse_top: int = bounded(0, "rows checked with BVSE", ge=0, le=1_000_000)
    # subtract weight x (normalised Herfindahl-Hirschman supply risk, 0..1) from the score
    supply_risk_weight: float = bounded(0.0, _WEIGHT, ge=0, le=100)
    # leave out candidates that are training materials (same reduced formula, or a
    # StructureMatcher match where both have structures); they are listed with their match
    exclude_known: bool = False
    # subtract weight x (3-D BVSE Li barrier - barrier_reference) in eV from the predicted
    # log10 sigma before scoring, where a barrier was computed (rows without one count as
    # the highest barrier found)
    barrier_weight: float = bounded(0.0, _WEIGHT, ge=0, le=100)
    barrier_reference: float = bounded(0.0, "eV", ge=0, le=100)
    # reference phases for stability estimates and the band-gap model (every row of each
    # source, whatever its elements); empty: the candidate sources
    references: list[CandidateSource] = Field(default_factory=list)

    @property
    def fast_log10_sigma(self) -> float:
        return math.log10(self.fast_sigma)


class ReportConfig(_Strict):
    # permutation importances of the composition model on the test rows (about a minute
    # or more); `miscreen report CONFIG --importances` computes them on request
    importances: bool = False


class SlurmConfig(_Strict):
    """Resources of the ``miscreen slurm submit`` job array and its merge job."""

    # array size: one shard per array task
    shards: int = bounded(10, "tasks of one SLURM job array", ge=1, le=10_000)
    # at most this many tasks at once
    max_parallel: int | None = bounded(None, "tasks of one SLURM job array", ge=1, le=10_000)
    partition: str | None = None
    account: str | None = None
    time: str = "04:00:00"
    cpus_per_task: int = bounded(1, "CPUs of one node", ge=1, le=1024)
    mem: str = "4G"
    merge_time: str = "01:00:00"
    merge_mem: str = "8G"
    extra_sbatch: tuple[str, ...] = ()  # more options, e.g. "--qos=normal"
    setup: tuple[str, ...] = ()  # shell lines run first, e.g. "module load python/3.11"


class DaskConfig(_Strict):
    """Where ``--backend dask`` runs: a running scheduler, or a dask-jobqueue SLURMCluster."""

    scheduler: str | None = None  # e.g. tcp://10.0.0.5:8786
    jobqueue: dict[str, Any] | None = None  # dask_jobqueue.SLURMCluster keyword arguments
    # SLURMCluster jobs to start (cluster.scale(jobs=...))
    jobs: int = bounded(1, "SLURM jobs of one Dask cluster", ge=1, le=10_000)
    # chunks in flight per worker thread
    chunks_per_worker: int = bounded(2, "chunks held in memory per worker", ge=1, le=1000)


class BatchConfig(_Strict):
    """Sharded, chunked screening: chunk size, default backend, SLURM and Dask settings."""

    # candidates per checkpointed chunk
    chunk_size: int = bounded(1000, "candidates held in memory at once", ge=1, le=1_000_000)
    backend: Literal["local", "dask"] = "local"
    slurm: SlurmConfig = SlurmConfig()
    dask: DaskConfig = DaskConfig()


class GenerateParents(_Strict):
    """Parent structures of ``miscreen generate``: the run's ``top`` ranked candidates, the
    candidate sources' rows with these ``ids``, and structure ``files`` (CIF, POSCAR,
    pymatgen JSON)."""

    top: int = bounded(0, "parents from the run's ranked candidates", ge=0, le=1000)
    ids: tuple[str, ...] = ()
    files: tuple[Path, ...] = ()


class GenerateConfig(_Strict):
    """New candidates by substitution, relaxed and placed on the hull by a universal
    potential (``miscreen generate``; :mod:`miscreen.generate`)."""

    parents: GenerateParents = GenerateParents()
    # explicit map, e.g. {Ge: [Si, Sn], S: [Se, O]}; empty: pymatgen's data-mined probabilities
    substitutions: dict[str, tuple[str, ...]] = {}
    min_probability: float = Field(default=1e-3, gt=0, le=1)  # data-mined substitutions
    max_per_parent: int = bounded(20, "data-mined substitutions per parent", ge=1, le=10_000)
    keep_elements: tuple[str, ...] = ("Li",)  # never substituted by the data-mined route
    aliovalent: bool = False  # allow a charge change made up by removing Li
    potential: str = "chgnet"  # a name of miscreen.potentials (chgnet, sevennet-0, ...)
    device: Literal["auto", "cpu", "cuda"] = "cpu"
    relax_steps: int = bounded(300, "FIRE steps per structure", ge=0, le=100_000)
    fmax: float = bounded(0.05, "eV/Å, the relaxation's force criterion", gt=0, le=10)
    relax_time_limit_s: float = bounded(600.0, "seconds per structure", gt=0, le=DAY_S)
    hull_references: Literal["dft_hull", "all"] = "dft_hull"
    drop_known: bool = True  # leave out candidates that are known materials
    backend: Literal["local", "slurm", "dask"] = "local"  # relaxations (unset: batch.backend)
    jobs: int = bounded(1, "relaxation processes on one machine", ge=1, le=1024)
    bvse: bool = True  # BVSE barriers of the generated candidates
    # the structure a candidate's features, prediction, score and BVSE barrier are taken
    # from: the parent as given with the substitution on every site (partial sites
    # included) at the relaxed cell's volume per atom, or the relaxed ordered cell. The
    # default follows benchmarks/research/ordered_inputs.py: on OBELiX training rows an
    # Ewald-ordered cell is predicted about 2 decades below its disordered CIF (issue 24)
    predict_from: Literal["substituted_parent", "relaxed"] = "substituted_parent"


class Config(_Strict):
    run_name: str = Field(default="default", pattern=r"^[A-Za-z0-9_.-]+$")
    seed: int = bounded(0, "numpy and scikit-learn take seeds in [0, 2**32)", ge=0, lt=MAX_SEED)
    results_dir: Path = Path("results")
    models_dir: Path = Path("models")
    # downloaded data files; the environment variable MISCREEN_DATA_DIR overrides it
    data_dir: Path = Path("data")
    # feature cache (default <data_dir>/cache/features); MISCREEN_CACHE_DIR overrides it
    cache_dir: Path | None = None
    data: DataConfig = DataConfig()
    features: FeaturesConfig = FeaturesConfig()
    model: ModelConfig = ModelConfig()
    candidates: tuple[CandidateSource, ...] = (ObelixSource(), PymatgenSource())
    screen: ScreenConfig = ScreenConfig()
    report: ReportConfig = ReportConfig()
    batch: BatchConfig = BatchConfig()
    generate: GenerateConfig = GenerateConfig()

    @field_validator("run_name")
    @classmethod
    def _one_folder_name(cls, value: str) -> str:
        """The run name is one folder name inside results/ and models/, never a path."""
        if set(value) <= {"."}:
            raise ValueError(f"run_name {value!r} is not a folder name; use e.g. 'lgps-run'")
        if len(value) > 100:
            raise ValueError("run_name is longer than 100 characters")
        return value

    @field_validator("results_dir", "models_dir", "data_dir", "cache_dir")
    @classmethod
    def _a_folder(cls, value: Path | None) -> Path | None:
        """A folder, or a path where one can be made: not a file, not below one."""
        problem = folder_problem(value) if value is not None else None
        if problem:
            raise ValueError(problem)
        return value

    @property
    def run_dir(self) -> Path:
        return self.results_dir / self.run_name

    @property
    def model_dir(self) -> Path:
        return self.models_dir / self.run_name

    @property
    def run(self) -> RunCatalog:
        """The run folder's artifacts."""
        return RunCatalog(self.run_dir)

    @property
    def models(self) -> ModelCatalog:
        """The model folder's artifacts."""
        return ModelCatalog(self.model_dir)

    @property
    def data_path(self) -> Path:
        """Where downloaded data files go: ``MISCREEN_DATA_DIR``, else ``data_dir``."""
        return Path(os.environ.get("MISCREEN_DATA_DIR") or self.data_dir)

    @property
    def cache_path(self) -> Path:
        """The feature cache: ``MISCREEN_CACHE_DIR``, else ``cache_dir``, else
        ``<data path>/cache/features``."""
        env = os.environ.get("MISCREEN_CACHE_DIR")
        if env:
            problem = folder_problem(Path(env))
            if problem:
                raise ConfigError(f"MISCREEN_CACHE_DIR: {problem}")
            return Path(env)
        return (
            self.cache_dir if self.cache_dir is not None else self.data_path / "cache" / "features"
        )

    def folders(self) -> dict[str, str]:
        """The resolved folders of this run, for the manifest."""
        return {
            "results": str(self.run_dir),
            "models": str(self.model_dir),
            "data": str(self.data_path),
            "feature_cache": str(self.cache_path),
            "mirrors": os.environ.get("MISCREEN_MIRROR", ""),
        }


def folder_problem(path: Path) -> str | None:
    """Why ``path`` cannot be (or become) a folder, or None: it, or the nearest of its
    parents that exists, is not a folder."""
    for part in (path, *path.parents):
        if part.exists() or part.is_symlink():
            if part.is_dir():
                return None
            what = "" if part == path else f" (its parent {part} is not a folder)"
            return f"{path} is not a folder{what}, name a folder there"
    return None


_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 80
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxdict = _SHORT.maxset = 5
_SHORT.maxlevel = 3
_BOUND_ERRORS = ("greater_than", "greater_than_equal", "less_than", "less_than_equal")


def load_config(path: Path | str) -> Config:
    """The validated config in ``path``; ``ConfigError`` naming the file and the problem."""
    path = Path(path)
    raw = read_yaml_file(path) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys to values")
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors()[:20]:
            key = shorten(".".join(str(p) for p in err["loc"]), 120)
            if err["type"] == "extra_forbidden":
                problems.append(f"unknown key '{key}'{_did_you_mean(err['loc'])}")
                continue
            got = _SHORT.repr(err.get("input"))
            field = _field(err["loc"])
            why = (
                f"{field.description}, "
                if err["type"] in _BOUND_ERRORS and field is not None and field.description
                else ""
            )
            problems.append(f"'{key}': {shorten(err['msg'], 300)} ({why}got {got})")
        raise ConfigError(f"{path}: " + "; ".join(problems)) from None


def _section(loc: tuple) -> type[BaseModel] | None:
    """The settings section (a model class) that holds the last key of ``loc``, or None
    when the path goes through anything but plain sections (e.g. a candidate list)."""
    model: type[BaseModel] = Config
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


def _field(loc: tuple) -> FieldInfo | None:
    model = _section(loc)
    return model.model_fields.get(str(loc[-1])) if model is not None and loc else None


def _did_you_mean(loc: tuple) -> str:
    """' (did you mean 'x'?)' for a misspelt key of a plain settings section, else ''."""
    model = _section(loc)
    if model is None:
        return ""
    close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""
