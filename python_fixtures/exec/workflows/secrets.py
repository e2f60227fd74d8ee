"""Tasks that read union secrets, one from an environment variable and one from a file, as
flytekit's SecretsManager finds them. They return a digest, never the value."""

import hashlib
import os

from flytekit import Secret, current_context, task, workflow


@task(secret_requests=[Secret(key="api_token", mount_requirement=Secret.MountType.ENV_VAR)])
def token_digest() -> str:
    value = current_context().secrets.get(key="api_token")
    # Where the secret came from, so that the test knows it was not a file.
    source = "env" if "_FSEC_API_TOKEN" in os.environ else "missing-env"
    return f"{source}:{hashlib.sha256(value.encode()).hexdigest()}"


@task(secret_requests=[Secret(key="tls_cert", mount_requirement=Secret.MountType.FILE)])
def cert_digest() -> str:
    path = current_context().secrets.get_secrets_file(key="tls_cert")
    value = current_context().secrets.get(key="tls_cert")
    source = "file" if os.path.isfile(path) and "_FSEC_TLS_CERT" not in os.environ else "missing-file"
    return f"{source}:{hashlib.sha256(value.encode()).hexdigest()}"


@task(secret_requests=[Secret(group="tls", key="tls_cert")])
def grouped_cert_digest() -> str:
    # The default mount requirement (ANY) is a file, under the group's directory.
    path = current_context().secrets.get_secrets_file(group="tls", key="tls_cert")
    value = current_context().secrets.get(group="tls", key="tls_cert")
    source = f"file {path}" if os.path.isfile(path) else "missing-file"
    return f"{source}:{hashlib.sha256(value.encode()).hexdigest()}"


@workflow
def secrets_wf() -> tuple[str, str, str]:
    return token_digest(), cert_digest(), grouped_cert_digest()


@task(secret_requests=[Secret(key="never_created")])
def needs_missing() -> int:
    return len(current_context().secrets.get(key="never_created"))


@workflow
def missing_wf() -> int:
    return needs_missing()
