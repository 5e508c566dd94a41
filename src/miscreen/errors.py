"""The one exception type for mistakes a user can fix from the message alone (a bad config,
an unreadable input file, a missing data file, a model folder to retrain). The command line
shows such an error as one red line without its type name; any other exception is a bug and
keeps its type (and, with ``miscreen --verbose``, its traceback)."""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input, data, models or environment; the message says what
    is wrong and how to fix it."""


class ConfigError(UserError, ValueError):
    """A config file (or config value) that cannot be used; the message names the file and
    the key. The command line exits with code 2 for it (1 for other user errors)."""


class ModelLoadError(UserError, RuntimeError):
    """A model folder that must not be used (missing, damaged, from another version, or
    holding what miscreen does not trust); the message says why and what to do."""


class ModelFolderBusy(UserError):
    """Another miscreen process is writing the same model folder."""
