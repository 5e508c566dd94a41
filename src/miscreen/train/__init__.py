"""Train and evaluate regressors of log10 conductivity; save and load model directories."""
