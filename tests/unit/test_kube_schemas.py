"""Every kind of YAML `kube generate` makes validates against Kubernetes' own OpenAPI schemas.

kubernetes-validate (a test dependency) ships the schemas of each Kubernetes release as JSON:
no network is needed. Strict mode refuses any field the schema does not know.
"""
from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
import yaml

from test_kube_generate import everything, seed_pair, container
from test_kube_pods import member, owner
from tether.rules.kube_generate import generate, with_comments

KUBERNETES_VERSION = "1.35"


def validate_yaml(text: str) -> list[dict[str, Any]]:
    """Validate each document of a multi-document YAML text; return the documents."""
    documents = [d for d in yaml.safe_load_all(text) if d is not None]
    assert documents
    for document in documents:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    return documents


def as_yaml(documents: list[dict[str, Any]]) -> str:
    return with_comments(yaml.safe_dump_all(documents, sort_keys=False))


@pytest.mark.parametrize("kind", ["pod", "deployment"])
@pytest.mark.parametrize("case", ["seed", "everything", "aliases", "pod"])
def test_generated_yaml_validates(kind: str, case: str) -> None:
    app = owner(ExposedPorts={"80/tcp": {}}, host={"PublishAllPorts": True},
                mounts=[{"Type": "bind", "Source": "/srv", "Destination": "/srv"}])
    side = member("side", app, pid=True, ExposedPorts={"80/tcp": {}, "81/tcp": {}},
                  mounts=[{"Type": "bind", "Source": "/srv", "Destination": "/srv"}])
    inputs = {"seed": seed_pair(), "everything": [everything()], "pod": [app, side],
              "aliases": [container("proj_db_1", ExposedPorts={"5432/tcp": {}},
                                    networks={"proj_default": {"Aliases": ["db"]}})]}[case]
    result = generate(inputs, {}, kind=kind, services=True)
    documents = validate_yaml(as_yaml(result.documents))
    assert documents == result.documents


def test_an_invalid_document_is_caught() -> None:
    """The check can fail: a field Kubernetes does not have is refused."""
    (pod,) = [d for d in generate([everything()], {}).documents if d["kind"] == "Pod"]
    pod["spec"]["containers"][0]["links"] = ["db"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)
