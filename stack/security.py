"""The secured mode's users and ACLs: conf/security.yaml applied through the Kafka Admin API, idempotently.

conf/security.yaml is the whole truth: each role's SCRAM credential is upserted (so a password changed in the
environment takes effect on the next `make up`), a user whose role is no longer declared is deleted, and an ACL of
any user but the admin that is not declared is deleted. Each declared permission becomes an ALLOW ACL for
`User:<role>`: `read` gives READ and DESCRIBE on a topic, `write` WRITE, DESCRIBE and DESCRIBE_CONFIGS,
`groups` READ on a consumer group, `inspect_topics` DESCRIBE and DESCRIBE_CONFIGS, `inspect_groups` DESCRIBE on
a group. Nothing is granted that is not declared.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)
from pydantic import BaseModel, ConfigDict, ValidationError

from pipeline_config.credentials import Credential
from pipeline_config.settings import (
    CONF_DIR,
    SettingsError,
    describe_validation_error,
    read_yaml,
)

TIMEOUT_S = 30
SCRAM_ITERATIONS = 8192


class RolePermissions(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    read: list[str] = []
    write: list[str] = []
    groups: list[str] = []
    inspect_topics: list[str] = []  # see topics and their configs without reading them
    inspect_groups: list[str] = []  # see consumer groups, their offsets and lag


class SecuritySpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    roles: dict[str, RolePermissions]


def load_security_spec(path: Path = CONF_DIR / "security.yaml") -> SecuritySpec:
    try:
        return SecuritySpec.model_validate(read_yaml(path))
    except ValidationError as exc:
        raise SettingsError(describe_validation_error(str(path), exc)) from None


def _pattern(name: str) -> tuple[str, ResourcePatternType]:
    if name == "*":
        return "*", ResourcePatternType.LITERAL  # Kafka's wildcard: every resource of the type
    if name.endswith("*"):
        return name[:-1], ResourcePatternType.PREFIXED
    return name, ResourcePatternType.LITERAL


def role_acls(role: str, permissions: RolePermissions) -> list[AclBinding]:
    """The ALLOW bindings conf/security.yaml gives one role."""
    principal = f"User:{role}"
    grants = [
        (ResourceType.TOPIC, name, op) for name in permissions.read for op in (AclOperation.READ, AclOperation.DESCRIBE)
    ]
    # DESCRIBE_CONFIGS: a producer checks the topic's retention against its rides' timestamps before sending.
    grants += [
        (ResourceType.TOPIC, name, op)
        for name in permissions.write
        for op in (AclOperation.WRITE, AclOperation.DESCRIBE, AclOperation.DESCRIBE_CONFIGS)
    ]
    grants += [(ResourceType.GROUP, name, AclOperation.READ) for name in permissions.groups]
    grants += [
        (ResourceType.TOPIC, name, op)
        for name in permissions.inspect_topics
        for op in (AclOperation.DESCRIBE, AclOperation.DESCRIBE_CONFIGS)
    ]
    grants += [(ResourceType.GROUP, name, AclOperation.DESCRIBE) for name in permissions.inspect_groups]
    bindings = []
    for resource, name, operation in dict.fromkeys(grants):  # read and write both give DESCRIBE: once
        resource_name, pattern = _pattern(name)
        bindings.append(
            AclBinding(resource, resource_name, pattern, principal, "*", operation, AclPermissionType.ALLOW)
        )
    return bindings


def declared_roles(spec: SecuritySpec) -> tuple[str, ...]:
    """The users of the secured stack: the admin (the brokers' own, a super user) and every declared role."""
    return (ADMIN, *[role for role in spec.roles if role != ADMIN])


def apply_security(admin, credentials: dict[str, Credential], spec: SecuritySpec) -> str:
    """Make the cluster's users and ACLs what the spec declares: upsert, then delete what it no longer names."""
    missing = sorted(set(spec.roles) - set(credentials))
    if missing:
        raise SettingsError(f"no credential for role(s) {', '.join(missing)} of conf/security.yaml")
    upserts = [
        UserScramCredentialUpsertion(
            credentials[role].username,
            ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS),
            credentials[role].password.encode(),
        )
        for role in spec.roles
    ]
    for future in admin.alter_user_scram_credentials(upserts).values():
        future.result(TIMEOUT_S)
    bindings = [binding for role, permissions in spec.roles.items() for binding in role_acls(role, permissions)]
    for future in admin.create_acls(bindings).values():
        future.result(TIMEOUT_S)
    removed_acls = _delete_undeclared_acls(admin, set(bindings))
    removed_users = _delete_undeclared_users(admin, set(spec.roles))
    return f"{len(upserts)} SCRAM users, {len(bindings)} ACLs" + (
        f"; removed {removed_acls} ACLs and user(s) {', '.join(removed_users) or 'none'} no longer declared"
        if removed_acls or removed_users
        else ""
    )


ADMIN = "admin"
# None matches any name, principal and host (confluent-kafka's type hints say str, its API takes None for "any").
ANY_NAME: Any = None
EVERY_ACL = AclBindingFilter(
    ResourceType.ANY, ANY_NAME, ResourcePatternType.ANY, ANY_NAME, ANY_NAME, AclOperation.ANY, AclPermissionType.ANY
)


def _delete_undeclared_acls(admin, declared: set[AclBinding]) -> int:
    existing = admin.describe_acls(EVERY_ACL, request_timeout=TIMEOUT_S).result(TIMEOUT_S)
    undeclared = [binding for binding in existing if binding.principal != f"User:{ADMIN}" and binding not in declared]
    if not undeclared:
        return 0
    filters = [
        AclBindingFilter(
            b.restype, b.name, b.resource_pattern_type, b.principal, b.host, b.operation, b.permission_type
        )
        for b in undeclared
    ]
    for future in admin.delete_acls(filters).values():
        future.result(TIMEOUT_S)
    return len(undeclared)


def _delete_undeclared_users(admin, roles: set[str]) -> list[str]:
    users = admin.describe_user_scram_credentials(request_timeout=TIMEOUT_S).result(TIMEOUT_S)
    gone = sorted(user for user in users if user != ADMIN and user not in roles)
    deletions = [
        UserScramCredentialDeletion(user, info.mechanism)
        for user in gone
        for info in users[user].scram_credential_infos
    ]
    if deletions:
        for future in admin.alter_user_scram_credentials(deletions).values():
            future.result(TIMEOUT_S)
    return gone
