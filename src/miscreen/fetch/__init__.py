"""Fetch structures and labels: Materials Project, OPTIMADE providers, local files, OBELiX
(``registry`` verifies every remote file by sha256); ``sources`` turns a run's configured
sources into records tables."""
