"""The pipeline's configuration files. This file only lets conf/ install as package data (`pipeline_config.conf`, see pyproject.toml); the settings are read by pipeline_config.settings."""
