"""The model card: a short markdown description of a saved model, from its ``model.json``."""

from __future__ import annotations


def model_card(record: dict) -> str:
    """A short markdown model card from the saved metadata."""
    cv = record.get("metrics", {})
    lines = [
        f"# miscreen model `{record.get('model', '?')}`",
        "",
        "Predicts log10 of the room-temperature Li-ion conductivity (S/cm) with a "
        "cross-conformal interval and an out-of-domain flag.",
        "",
        f"- Features: preset `{record['feature_schema']['preset']}`, "
        f"{len(record['feature_schema']['names'])} descriptors, "
        f"schema version `{record['feature_schema']['version']}`",
        f"- Estimator: {record.get('config', {}).get('kind', '?')} "
        f"({record.get('config', {}).get('n_estimators', '?')} trees), seed {record.get('seed')}",
        f"- Hyperparameters: {_hyperparameters(cv)}",
        f"- Training rows: {record.get('training_rows')} "
        f"(sha256 of labels {str(record.get('training_data_sha256'))[:16]}...), "
        f"censored values: `{record.get('censored_policy')}`",
        f"- {cv.get('cv_scheme', 'CV')}: MAE {cv.get('cv_mae', float('nan')):.3f}, "
        f"Spearman {cv.get('cv_spearman', float('nan')):.3f}",
        f"- Model file `{record['model_file']}` (skops format, loaded with a trusted-types "
        f"list), sha256 `{record['model_sha256']}`; scikit-learn "
        f"{record['packages'].get('scikit-learn')}",
        "",
        "## Intended use and limits",
        "",
        "Ranking candidate solid electrolytes for experimental follow-up. Errors are about 1.5 "
        "orders of magnitude on new publications; rows flagged out of domain deserve extra "
        "doubt. Trained on experimental data from OBELiX (Therrien et al., Digital Discovery "
        "2026, CC BY 4.0) unless the training inputs in model.json say otherwise.",
        "",
    ]
    return "\n".join(lines)


def _hyperparameters(cv: dict) -> str:
    tuning = cv.get("hyperparameters", {})
    if tuning.get("recorded"):
        return f"{tuning['recorded']}, as recorded in the config (model.hyperparameters)"
    if not tuning.get("searched"):
        return "defaults (no search)"
    return (
        f"{tuning['best_params']}, chosen by {tuning['scheme']} (MAE {tuning['best_cv_mae']:.3f})"
    )
