"""Train and evaluate regressors of log10 conductivity; save and load model folders.

- ``estimators``: the model kinds and the conformal wrapper; ``fit``: one model on a
  feature table; ``evaluate``: metrics; ``splits``: grouped CV splits.
- ``row_kinds``: what each input row has, and the trained result; ``routing``: fitting a
  model per kind and choosing which serves each kind.
- ``persist``: one model's folder (estimator, ``model.json``, card); ``trusted_types``:
  loading an estimator file with exactly the trusted types; ``fitted_checks``: checks of
  the loaded trees; ``model_card``: the card's text; ``model_folders``: a run's whole
  model folder (swap, leftovers, writer lock, ``routing.json`` schema).
"""
