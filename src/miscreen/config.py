"""Run configuration: a YAML file validated by pydantic.

Unknown keys and bad values are errors that name the key and the file. The YAML is read
with limits, so a hostile or broken file costs neither time nor memory: at most
``MAX_CONFIG_BYTES`` bytes, ``MAX_ALIASES`` alias uses, ``MAX_NODES`` values once aliases
are expanded, ``MAX_DEPTH`` levels of nesting, no recursive anchors; error messages show
short excerpts of bad values, never their whole text.
"""

from __future__ import annotations

import difflib
import os
import reprlib
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from miscreen.catalog import ModelCatalog, RunCatalog
from miscreen.errors import UserError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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


class FeaturesConfig(_Strict):
    preset: Literal["composition", "cell", "structure", "li_conductor", "full"] = "full"
    jobs: int | None = Field(default=None, ge=1)
    # wall-clock limit per structure; a structure over it goes to failures, the rest go on
    time_limit_s: float = Field(default=60.0, gt=0)


ModelKind = Literal["extra_trees", "random_forest", "hist_gradient_boosting", "ensemble"]
MODEL_KINDS: tuple[str, ...] = get_args(ModelKind)


class ModelConfig(_Strict):
    kind: ModelKind = "ensemble"
    n_estimators: int = Field(default=500, ge=10)
    cv_folds: int = Field(default=5, ge=2)
    tune: bool = True  # grid-search the kind's hyperparameters by grouped CV (train split)
    # hyperparameters applied when not tuning, e.g. those a search chose and recorded
    hyperparameters: dict[str, float | int | str | None] = {}
    interval: float = Field(default=0.8, gt=0, lt=1)


class ScreenConfig(_Strict):
    top_k: int = Field(default=25, ge=1)
    require_elements: tuple[str, ...] = ("Li",)
    # at least one of these (e.g. the anions of electrolytes: leaves out alloys and
    # intermetallics, which conduct electrons); empty: no such filter
    require_any_elements: tuple[str, ...] = ()
    exclude_elements: tuple[str, ...] = ()
    max_e_above_hull: float | None = Field(default=None, ge=0)
    min_band_gap: float | None = Field(default=None, ge=0)
    max_sites: int | None = Field(default=None, ge=1)
    min_li_fraction: float | None = Field(default=None, ge=0, le=1)  # atomic fraction of Li
    score: Literal["mean", "lower", "upper"] = "mean"
    # subtract weight x (normalised Herfindahl-Hirschman supply risk, 0..1) from the score
    supply_risk_weight: float = Field(default=0.0, ge=0)
    # leave out candidates that are training materials (same reduced formula, or a
    # StructureMatcher match where both have structures); they are listed with their match
    exclude_known: bool = False
    # subtract weight x the 3-D BVSE Li barrier (eV) from the score, where `miscreen verify
    # bvse` computed one (rows without one count as the highest barrier found)
    barrier_weight: float = Field(default=0.0, ge=0)


class ReportConfig(_Strict):
    # permutation importances of the composition model on the test rows (about a minute
    # or more); `miscreen report CONFIG --importances` computes them on request
    importances: bool = False


class SlurmConfig(_Strict):
    """Resources of the ``miscreen slurm submit`` job array and its merge job."""

    shards: int = Field(default=10, ge=1)  # array size: one shard per array task
    max_parallel: int | None = Field(default=None, ge=1)  # at most this many tasks at once
    partition: str | None = None
    account: str | None = None
    time: str = "04:00:00"
    cpus_per_task: int = Field(default=1, ge=1)
    mem: str = "4G"
    merge_time: str = "01:00:00"
    merge_mem: str = "8G"
    extra_sbatch: tuple[str, ...] = ()  # more options, e.g. "--qos=normal"
    setup: tuple[str, ...] = ()  # shell lines run first, e.g. "module load python/3.11"


class DaskConfig(_Strict):
    """Where ``--backend dask`` runs: a running scheduler, or a dask-jobqueue SLURMCluster."""

    scheduler: str | None = None  # e.g. tcp://10.0.0.5:8786
    jobqueue: dict[str, Any] | None = None  # dask_jobqueue.SLURMCluster keyword arguments
    jobs: int = Field(default=1, ge=1)  # SLURMCluster jobs to start (cluster.scale(jobs=...))
    chunks_per_worker: int = Field(default=2, ge=1)  # chunks in flight per worker thread


class BatchConfig(_Strict):
    """Sharded, chunked screening: chunk size, default backend, SLURM and Dask settings."""

    chunk_size: int = Field(default=1000, ge=1)  # candidates per checkpointed chunk
    backend: Literal["local", "dask"] = "local"
    slurm: SlurmConfig = SlurmConfig()
    dask: DaskConfig = DaskConfig()


class Config(_Strict):
    run_name: str = Field(default="default", pattern=r"^[A-Za-z0-9_.-]+$")
    seed: int = 0
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

    @field_validator("run_name")
    @classmethod
    def _one_folder_name(cls, value: str) -> str:
        """The run name is one folder name inside results/ and models/, never a path."""
        if set(value) <= {"."}:
            raise ValueError(f"run_name {value!r} is not a folder name; use e.g. 'lgps-run'")
        if len(value) > 100:
            raise ValueError("run_name is longer than 100 characters")
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


class ConfigError(UserError, ValueError):
    """A config file that cannot be used; the message names the file and the key."""


MAX_CONFIG_BYTES = 1 << 20
MAX_ALIASES = 100
MAX_NODES = 20_000
MAX_DEPTH = 50
_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 80
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxdict = _SHORT.maxset = 5
_SHORT.maxlevel = 3


def load_config(path: Path | str) -> Config:
    """The validated config in ``path``; ``ConfigError`` naming the file and the problem."""
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise ConfigError(f"config file {path} {what}")
    size = path.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"{path}: {size:,} bytes; a config is at most {MAX_CONFIG_BYTES:,} bytes of YAML"
        )
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    raw = safe_yaml(text, str(path)) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys to values")
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors()[:20]:
            key = _short(".".join(str(p) for p in err["loc"]), 120)
            if err["type"] == "extra_forbidden":
                problems.append(f"unknown key '{key}'{_did_you_mean(err['loc'])}")
            else:
                got = _SHORT.repr(err.get("input"))
                problems.append(f"'{key}': {_short(err['msg'], 300)} (got {got})")
        raise ConfigError(f"{path}: " + "; ".join(problems)) from None


def _did_you_mean(loc: tuple) -> str:
    """' (did you mean 'x'?)' for a misspelt key of a plain settings section, else ''."""
    model: type[BaseModel] = Config
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return ""
        model = annotation
    close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


class _LimitedLoader(yaml.SafeLoader):
    """The safe loader, stopping at ``MAX_DEPTH`` levels of nesting while it scans (deeply
    nested flow collections otherwise cost the scanner time growing with the square)."""

    def fetch_more_tokens(self) -> None:
        if self.flow_level > MAX_DEPTH or len(self.indents) > MAX_DEPTH:
            raise _TooDeep
        super().fetch_more_tokens()


class _TooDeep(Exception):
    pass


def safe_yaml(text: str, where: str = "<config>") -> Any:
    """Parse one YAML document with the safe loader, refusing documents whose aliases
    expand beyond the budget (``MAX_ALIASES`` uses, ``MAX_NODES`` values), recursive
    anchors and nesting deeper than ``MAX_DEPTH``, before anything is constructed."""
    loader = None
    try:
        loader = _LimitedLoader(text)
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node, where)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML: {_short(str(exc), 500)}") from None
    except (RecursionError, _TooDeep):
        raise ConfigError(f"{where}: YAML nested too deeply (limit {MAX_DEPTH} levels)") from None
    finally:
        if loader is not None:
            loader.dispose()


def _check_expansion(root: yaml.Node, where: str) -> None:
    """Count the values of the document with every alias expanded, without expanding it."""
    sizes: dict[int, int] = {}
    active: set[int] = set()
    aliases = 0

    def size(node: yaml.Node, depth: int) -> int:
        nonlocal aliases
        key = id(node)
        if key in active:
            raise ConfigError(f"{where}: a YAML alias refers to the value that contains it")
        if key in sizes:
            aliases += 1
            if aliases > MAX_ALIASES:
                raise ConfigError(f"{where}: more than {MAX_ALIASES} YAML alias uses (*name)")
            return sizes[key]
        if depth > MAX_DEPTH:
            raise ConfigError(f"{where}: YAML nested too deeply (limit {MAX_DEPTH} levels)")
        active.add(key)
        if isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        else:
            children = []
        total = 1
        for child in children:
            total += size(child, depth + 1)
            if total > MAX_NODES:
                raise ConfigError(
                    f"{where}: the YAML expands to more than {MAX_NODES:,} values "
                    f"(aliases repeat their anchor's whole value); write the config out plainly"
                )
        active.discard(key)
        sizes[key] = total
        return total

    size(root, 0)


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
