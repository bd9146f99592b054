"""Compatibility per schema subject, declared in conf/schemas.yaml and applied through the Confluent API."""

from __future__ import annotations

from pathlib import Path

import requests
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from pipeline_config.settings import (
    CONF_DIR,
    SettingsError,
    describe_validation_error,
    read_yaml,
)

LEVELS = ("NONE", "BACKWARD", "FORWARD", "FULL", "BACKWARD_TRANSITIVE", "FORWARD_TRANSITIVE", "FULL_TRANSITIVE")


class _SchemasFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    subjects: dict[str, str] = {}

    @field_validator("subjects")
    @classmethod
    def _known_levels(cls, subjects: dict[str, str]) -> dict[str, str]:
        for subject, level in subjects.items():
            if level not in LEVELS:
                raise ValueError(f"{subject}: {level!r} is not one of {', '.join(LEVELS)}")
            if not subject.endswith(("-key", "-value")):
                raise ValueError(f"{subject}: subjects are named <topic>-key or <topic>-value")
        return subjects


def load_subject_compatibility(path: Path = CONF_DIR / "schemas.yaml") -> dict[str, str]:
    try:
        return _SchemasFile.model_validate(read_yaml(path)).subjects
    except ValidationError as exc:
        raise SettingsError(describe_validation_error(str(path), exc)) from None


def apply_subject_compatibility(registry_url: str, subjects: dict[str, str]) -> list[str]:
    """Set each subject's level where it differs; returns the subjects changed. Idempotent."""
    changed = []
    for subject, level in subjects.items():
        current = requests.get(f"{registry_url}/config/{subject}", timeout=10)
        if current.ok and current.json().get("compatibilityLevel") == level:
            continue
        response = requests.put(f"{registry_url}/config/{subject}", json={"compatibility": level}, timeout=10)
        response.raise_for_status()
        changed.append(f"{subject}={level}")
    return changed
