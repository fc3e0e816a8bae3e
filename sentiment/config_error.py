"""The error every configuration check raises; apart from :mod:`sentiment.config`, so that a section
defined beside what it configures (``sentiment.logs.LogsConfig``) raises it too."""


class ConfigError(ValueError):
    """A configuration value is missing, unknown or out of range."""
