"""Chart checks with the real Helm engine (helm-python-sdk, Helm v4 Go SDK) and the Kubernetes
OpenAPI schemas (kubernetes-validate --strict). Run through ./run.sh."""

import copy
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import helm_python as helm
import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "tributary"
NAMESPACE = "tributary-system"
# Oldest supported (Chart.yaml kubeVersion) and newest known to kubernetes-validate.
KUBE_VERSIONS = ["1.30.0", "1.37.0"]

MATRIX = {
    "defaults": {},
    "watched-namespaces": {"watchNamespaces": ["team-a", "team-b"]},
    "ha": {"replicaCount": 3},
    "monitoring": {
        "metrics": {
            "serviceMonitor": {"enabled": True, "labels": {"release": "prom"}},
            "podMonitor": {"enabled": True},
            "prometheusRule": {"enabled": True},
        },
        "dashboards": {"enabled": True, "namespace": "grafana"},
    },
    "no-crds-no-rbac": {"crds": {"install": False}, "rbac": {"create": False}, "serviceAccount": {"create": False, "name": "ops"}},
    "pinned-images": {
        "image": {"tag": "1.2.3", "pullPolicy": "Always"},
        "dataplane": {"image": {"repository": "registry.local/tributary", "tag": "9.9.9"}},
        "imagePullSecrets": [{"name": "regcred"}],
        "leaderElection": {"enabled": True},
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
    },
}


def render(values):
    with helm.Chart.load(str(CHART)) as chart:
        files = chart.render(copy.deepcopy(values), name="demo", namespace=NAMESPACE)
    return files


def objects(values):
    out = []
    for name, text in sorted(render(values).items()):
        if name.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                out.append(doc)
    return out


def by_kind(objs, kind):
    return [o for o in objs if o["kind"] == kind]


def operator_deployment(objs):
    (dep,) = by_kind(objs, "Deployment")
    return dep


def env(dep):
    c = dep["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value") for e in c["env"]}


@pytest.mark.parametrize("case", sorted(MATRIX))
def test_chart_lints_clean_in_strict_mode(case):
    result = helm.lint(str(CHART), values=copy.deepcopy(MATRIX[case]), strict=True, kube_version="v1.32.0")
    assert result["errors"] == []
    assert [m for m in result["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize("kube", KUBE_VERSIONS)
@pytest.mark.parametrize("case", sorted(MATRIX))
def test_rendered_manifests_pass_kubernetes_validate_strict(case, kube, tmp_path):
    docs = objects(MATRIX[case])
    assert docs, "nothing rendered"
    path = tmp_path / "rendered.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    exe = Path(sys.executable).parent / "kubernetes-validate"
    proc = subprocess.run([str(exe), "-k", kube, "--strict", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_rendered_crds_are_the_committed_crds_plus_helm_annotations():
    committed = {}
    for f in sorted((REPO / "crds").glob("*.yaml")):
        doc = yaml.safe_load(f.read_text())
        committed[doc["metadata"]["name"]] = doc
    rendered = {o["metadata"]["name"]: o for o in by_kind(objects({}), "CustomResourceDefinition")}
    assert sorted(rendered) == sorted(committed)
    for name, crd in rendered.items():
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        crd = copy.deepcopy(crd)
        del crd["metadata"]["annotations"], crd["metadata"]["labels"]
        assert crd == committed[name], name
    # The chart's copy is byte-identical to crds/ (the operator's tests regenerate both).
    for f in (REPO / "crds").glob("*.yaml"):
        assert (CHART / "files" / "crds" / f.name).read_text() == f.read_text()


def test_crds_can_be_left_out_or_dropped_on_uninstall():
    assert by_kind(objects({"crds": {"install": False}}), "CustomResourceDefinition") == []
    crds = by_kind(objects({"crds": {"keep": False}}), "CustomResourceDefinition")
    assert crds and all("helm.sh/resource-policy" not in c["metadata"].get("annotations", {}) for c in crds)


def operator_rules(objs, kind):
    roles = [r for r in by_kind(objs, kind) if r["metadata"]["name"] == "demo-tributary-operator"]
    return roles


def test_rbac_is_cluster_wide_only_when_no_namespaces_are_watched():
    objs = objects({})
    assert len(operator_rules(objs, "ClusterRole")) == 1
    assert by_kind(objs, "ClusterRoleBinding")[0]["subjects"][0]["namespace"] == NAMESPACE
    assert operator_rules(objs, "Role") == []

    objs = objects({"watchNamespaces": ["team-a", "team-b"]})
    assert operator_rules(objs, "ClusterRole") == []
    assert by_kind(objs, "ClusterRoleBinding") == []
    roles = operator_rules(objs, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    assert env(operator_deployment(objs))["TRIBUTARY_OPERATOR_WATCH_NAMESPACES"] == "team-a,team-b"


def test_rbac_grants_exactly_what_the_operator_calls_and_only_get_and_create_on_secrets():
    (role,) = operator_rules(objects({}), "ClusterRole")
    grants = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for res in rule["resources"]:
                grants.setdefault((group, res), set()).update(rule["verbs"])
                assert "*" not in rule["verbs"] and res != "*" and group != "*"
    # Whether a referenced Secret exists and creating a multi-pod Stream's token Secret once;
    # never a list or watch of every Secret's values, never an update of one.
    assert grants[("", "secrets")] == {"get", "create"}
    # Server-side apply of a missing child needs create as well as patch.
    for child in [("apps", "statefulsets"), ("apps", "deployments"), ("", "services"), ("", "configmaps"),
                  ("", "persistentvolumeclaims"), ("policy", "poddisruptionbudgets")]:
        assert {"create", "patch", "get"} <= grants[child], child
    # Children the controllers watch for drift.
    for watched in [("apps", "statefulsets"), ("apps", "deployments"), ("", "services"), ("", "configmaps")]:
        assert {"list", "watch"} <= grants[watched]
    for kind in ["streams", "streamconsumers", "deliverystreams", "analyticsapps"]:
        assert {"get", "list", "watch", "patch"} <= grants[("tributary.dev", kind)]
        assert "patch" in grants[("tributary.dev", f"{kind}/status")]
        assert "update" in grants[("tributary.dev", f"{kind}/finalizers")]
    assert "create" in grants[("events.k8s.io", "events")]


def test_leader_election_follows_the_replica_count():
    single = objects({})
    dep = operator_deployment(single)
    assert env(dep)["TRIBUTARY_OPERATOR_LEADER_ELECTION"] == "false"
    assert dep["spec"]["strategy"]["type"] == "Recreate"
    assert not [r for r in by_kind(single, "Role") if r["metadata"]["name"].endswith("leader-election")]
    assert by_kind(single, "PodDisruptionBudget") == []

    ha = objects({"replicaCount": 3})
    dep = operator_deployment(ha)
    assert env(dep)["TRIBUTARY_OPERATOR_LEADER_ELECTION"] == "true"
    assert "strategy" not in dep["spec"]
    (lease_role,) = [r for r in by_kind(ha, "Role") if r["metadata"]["name"].endswith("leader-election")]
    assert lease_role["metadata"]["namespace"] == NAMESPACE
    assert lease_role["rules"][0]["resources"] == ["leases"]
    assert len(by_kind(ha, "PodDisruptionBudget")) == 1


def test_operator_pod_is_hardened_and_uses_its_service_account():
    objs = objects({})
    dep = operator_deployment(objs)
    pod = dep["spec"]["template"]["spec"]
    (sa,) = by_kind(objs, "ServiceAccount")
    assert pod["serviceAccountName"] == sa["metadata"]["name"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    c = pod["containers"][0]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert c["args"] == ["run"]
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    (svc,) = by_kind(objs, "Service")
    assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]


def test_image_tags_default_to_the_app_version():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    dep = operator_deployment(objects({}))
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":" + chart["appVersion"])
    assert env(dep)["TRIBUTARY_OPERATOR_DATAPLANE_IMAGE"].endswith(":" + chart["appVersion"])
    dep = operator_deployment(objects(MATRIX["pinned-images"]))
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":1.2.3")
    assert env(dep)["TRIBUTARY_OPERATOR_DATAPLANE_IMAGE"] == "registry.local/tributary:9.9.9"


def test_every_operator_env_var_is_a_flag_the_operator_reads():
    source = (REPO / "operator" / "src" / "config.rs").read_text()
    for name in env(operator_deployment(objects({}))):
        if name.startswith("TRIBUTARY_OPERATOR_") or name in ("POD_NAME", "POD_NAMESPACE"):
            assert f'env = "{name}"' in source, name


@pytest.mark.parametrize(
    "bad",
    [
        {"replicaCount": "two"},
        {"replicaCount": 1, "unknownKey": True},
        {"watchNamespaces": ["Not_A_Namespace"]},
        {"dataplane": {"accountId": "123"}},
        {"metrics": {"serviceMonitor": {"enabled": "yes"}}},
    ],
)
def test_values_schema_rejects_invalid_values(bad):
    with helm.Chart.load(str(CHART)) as chart:
        with pytest.raises(helm.HelmValuesError):
            chart.validate_schema(bad)


def test_monitoring_objects_render_only_when_enabled():
    kinds = {o["kind"] for o in objects({})}
    assert not kinds & {"ServiceMonitor", "PodMonitor", "PrometheusRule"}
    objs = objects(MATRIX["monitoring"])
    (sm,) = by_kind(objs, "ServiceMonitor")
    assert sm["metadata"]["labels"]["release"] == "prom"
    (pm,) = by_kind(objs, "PodMonitor")
    assert pm["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "stream"
    (rule,) = by_kind(objs, "PrometheusRule")
    assert rule["spec"] == yaml.safe_load((CHART / "files" / "prometheus-rules.yaml").read_text())
    dashboards = [o for o in by_kind(objs, "ConfigMap") if "dashboard" in o["metadata"]["name"]]
    assert len(dashboards) == 2
    for cm in dashboards:
        assert cm["metadata"]["namespace"] == "grafana"
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        for body in cm["data"].values():
            assert json.loads(body)["panels"]


def exported_metrics():
    """Metric names the binaries register (string literals in their metrics modules)."""
    names = set()
    for src in [REPO / "operator" / "src" / "metrics.rs", REPO / "dataplane" / "src" / "metrics" / "mod.rs"]:
        names |= set(re.findall(r'"((?:tributary_operator|kinesis|firehose|analytics)_[a-z0-9_]+)"', src.read_text()))
    return names


def used_metrics():
    exprs = []
    for f in (CHART / "files" / "dashboards").glob("*.json"):
        for panel in json.loads(f.read_text())["panels"]:
            exprs += [t["expr"] for t in panel["targets"]]
    rules = yaml.safe_load((CHART / "files" / "prometheus-rules.yaml").read_text())
    exprs += [r["expr"] for g in rules["groups"] for r in g["rules"]]
    names = set()
    for e in exprs:
        for m in re.findall(r"\b((?:tributary_operator|kinesis|firehose|analytics)_[a-z0-9_]+)", e):
            names.add(re.sub(r"_(bucket|count|sum)$", "", m))
    return names


def test_every_metric_a_dashboard_or_alert_uses_is_exported():
    used = used_metrics()
    assert len(used) >= 10
    missing = used - exported_metrics()
    assert missing == set()


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus) not installed")
def test_prometheus_rules_pass_promtool():
    proc = subprocess.run(
        ["promtool", "check", "rules", str(CHART / "files" / "prometheus-rules.yaml")], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def strictify(schema):
    """Reject unknown fields, as the apiserver's strict field validation does."""
    if isinstance(schema, dict):
        if schema.get("type") == "object" and "properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema.setdefault("additionalProperties", False)
        for v in schema.values():
            strictify(v)
    elif isinstance(schema, list):
        for v in schema:
            strictify(v)
    return schema


def crd_schemas():
    schemas = {}
    for f in (REPO / "crds").glob("*.yaml"):
        crd = yaml.safe_load(f.read_text())
        for v in crd["spec"]["versions"]:
            s = strictify(copy.deepcopy(v["schema"]["openAPIV3Schema"]))
            s["properties"].update({"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"}})
            schemas[(f"{crd['spec']['group']}/{v['name']}", crd["spec"]["names"]["kind"])] = s
    return schemas


def nullable_ok(validator_cls):
    """OpenAPI `nullable: true` lets a field be null; JSON Schema draft 4 knows no such thing."""

    def type_check(validator, types, instance, schema):
        if instance is None and schema.get("nullable"):
            return
        yield from jsonschema.Draft4Validator.VALIDATORS["type"](validator, types, instance, schema)

    return jsonschema.validators.extend(validator_cls, {"type": type_check})


def test_examples_validate_against_the_crd_schemas():
    schemas = crd_schemas()
    validator = nullable_ok(jsonschema.Draft4Validator)
    seen = 0
    for f in sorted((REPO / "examples").glob("*/*.yaml")):
        for doc in yaml.safe_load_all(f.read_text()):
            if not doc:
                continue
            schema = schemas[(doc["apiVersion"], doc["kind"])]
            errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator(schema).iter_errors(doc)]
            assert errors == [], f.name
            seen += 1
    assert seen >= 3


def test_schema_check_catches_a_typo_in_an_example():
    schemas = crd_schemas()
    bad = {"apiVersion": "tributary.dev/v1alpha1", "kind": "Stream", "metadata": {"name": "x"}, "spec": {"shardCont": 2}}
    errors = list(nullable_ok(jsonschema.Draft4Validator)(schemas[("tributary.dev/v1alpha1", "Stream")]).iter_errors(bad))
    assert any("shardCont" in e.message for e in errors)


def test_notes_render_for_watched_namespaces_and_missing_crds():
    notes = render({"watchNamespaces": ["team-a"], "crds": {"install": False}})["tributary/templates/NOTES.txt"]
    assert "team-a" in notes
    assert "kubectl apply -f crds/" in notes


def test_chart_packages(tmp_path):
    path = helm.package(str(CHART), destination=str(tmp_path))
    assert Path(path).name == "tributary-0.1.0.tgz"
    result = helm.lint(path, strict=True, kube_version="v1.32.0")
    assert result["errors"] == []


@pytest.mark.parametrize("kube", KUBE_VERSIONS)
def test_operator_built_manifests_pass_kubernetes_validate_strict(kube):
    """The StatefulSet, Services, PDB and ConfigMap the operator applies for a Stream (its
    snapshot-tested builder output) are valid Kubernetes objects."""
    snapshots = sorted((REPO / "operator" / "src" / "resources" / "snapshots").glob("*.yaml"))
    assert len(snapshots) >= 5
    exe = Path(sys.executable).parent / "kubernetes-validate"
    proc = subprocess.run([str(exe), "-k", kube, "--strict", *map(str, snapshots)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
