"""The secured mode's users and ACLs: conf/security.yaml applied through the Kafka Admin API, idempotently.

Each role's SCRAM credential is upserted (so a password changed in the environment takes effect on the next
`make up`), and each declared permission becomes an ALLOW ACL for `User:<role>`: `read` gives READ and DESCRIBE on
a topic, `write` WRITE, DESCRIBE and DESCRIBE_CONFIGS, `groups` READ on a consumer group. Nothing is granted that is not declared.
"""

from __future__ import annotations

from pathlib import Path

from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)
from pydantic import BaseModel, ConfigDict, ValidationError

from stack.credentials import Credential
from stack.settings import CONF_DIR, SettingsError, describe_validation_error, read_yaml

TIMEOUT_S = 30
SCRAM_ITERATIONS = 8192


class RolePermissions(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    read: list[str] = []
    write: list[str] = []
    groups: list[str] = []


class SecuritySpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    roles: dict[str, RolePermissions]


def load_security_spec(path: Path = CONF_DIR / "security.yaml") -> SecuritySpec:
    try:
        return SecuritySpec.model_validate(read_yaml(path))
    except ValidationError as exc:
        raise SettingsError(describe_validation_error(str(path), exc)) from None


def _pattern(name: str) -> tuple[str, ResourcePatternType]:
    if name.endswith("*"):
        return name[:-1], ResourcePatternType.PREFIXED
    return name, ResourcePatternType.LITERAL


def role_acls(role: str, permissions: RolePermissions) -> list[AclBinding]:
    """The ALLOW bindings conf/security.yaml gives one role."""
    principal = f"User:{role}"
    grants = [(ResourceType.TOPIC, name, op) for name in permissions.read
              for op in (AclOperation.READ, AclOperation.DESCRIBE)]
    # DESCRIBE_CONFIGS: a producer checks the topic's retention against its rides' timestamps before sending.
    grants += [(ResourceType.TOPIC, name, op) for name in permissions.write
               for op in (AclOperation.WRITE, AclOperation.DESCRIBE, AclOperation.DESCRIBE_CONFIGS)]
    grants += [(ResourceType.GROUP, name, AclOperation.READ) for name in permissions.groups]
    bindings = []
    for resource, name, operation in dict.fromkeys(grants):  # read and write both give DESCRIBE: once
        resource_name, pattern = _pattern(name)
        bindings.append(AclBinding(resource, resource_name, pattern, principal, "*", operation,
                                   AclPermissionType.ALLOW))
    return bindings


def apply_security(admin, credentials: dict[str, Credential], spec: SecuritySpec) -> str:
    unknown = sorted(set(spec.roles) - set(credentials))
    if unknown:
        raise SettingsError(f"conf/security.yaml names role(s) {', '.join(unknown)}; known: {', '.join(credentials)}")
    upserts = [
        UserScramCredentialUpsertion(credentials[role].username,
                                     ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS),
                                     credentials[role].password.encode())
        for role in spec.roles
    ]
    for future in admin.alter_user_scram_credentials(upserts).values():
        future.result(TIMEOUT_S)
    bindings = [binding for role, permissions in spec.roles.items() for binding in role_acls(role, permissions)]
    for future in admin.create_acls(bindings).values():
        future.result(TIMEOUT_S)
    return f"{len(upserts)} SCRAM users, {len(bindings)} ACLs"
