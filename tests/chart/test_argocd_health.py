"""The Argo CD health checks in charts/tributary/argocd/ (one health.lua per kind), run the
way Argo CD runs them: the script gets the live object as the global `obj` and returns a
table with `status` and `message`. Argo CD embeds gopher-lua, a Lua 5.1; these tests run the
scripts in Lua 5.1 (PyPI lupa) against sample resources in every state the operator reports."""

import copy
from pathlib import Path

import pytest
from lupa import lua51

REPO = Path(__file__).resolve().parents[2]
CHECKS = REPO / "charts" / "tributary" / "argocd" / "tributary.dev"
KINDS = ["Stream", "StreamConsumer", "DeliveryStream", "AnalyticsApp"]


def to_lua(runtime, value):
    if isinstance(value, dict):
        return runtime.table_from({k: to_lua(runtime, v) for k, v in value.items()})
    if isinstance(value, list):
        return runtime.table_from([to_lua(runtime, v) for v in value])
    return value


def health(kind, obj):
    runtime = lua51.LuaRuntime(unpack_returned_tuples=True)
    runtime.globals().obj = to_lua(runtime, obj)
    script = (CHECKS / kind / "health.lua").read_text()
    out = runtime.execute(script)
    return out["status"], out["message"]


def cond(type_, status, reason, message="", generation=2):
    return {"type": type_, "status": status, "reason": reason, "message": message,
            "lastTransitionTime": "2026-11-26T10:00:00Z", "observedGeneration": generation}


def resource(kind, ready, reconciling, stalled, observed=2, generation=2, extra=()):
    return {
        "apiVersion": "tributary.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": "x", "namespace": "default", "generation": generation},
        "status": {
            "observedGeneration": observed,
            "conditions": [cond("Ready", *ready), cond("Reconciling", *reconciling),
                           cond("Stalled", *stalled), *extra],
        },
    }


ACTIVE = {
    "Stream": ("True", "Active", "Stream is ACTIVE with 2 open shards"),
    "StreamConsumer": ("True", "Active", "Consumer is ACTIVE"),
    "DeliveryStream": ("True", "Active", "Status is ACTIVE"),
    "AnalyticsApp": ("True", "Running", "Status is RUNNING"),
}


def test_every_kind_has_a_health_check():
    assert sorted(p.parent.name for p in CHECKS.glob("*/health.lua")) == sorted(KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_ready_for_the_current_generation_is_healthy(kind):
    r = ACTIVE[kind]
    obj = resource(kind, r, ("False", r[1]), ("False", r[1]))
    assert health(kind, obj) == ("Healthy", r[2])


@pytest.mark.parametrize("kind", KINDS)
def test_a_resource_the_operator_has_not_seen_is_progressing(kind):
    obj = resource(kind, ("Unknown", "NotReconciled", "Waiting for the operator"),
                   ("Unknown", "NotReconciled"), ("Unknown", "NotReconciled"), observed=0, generation=1)
    status, message = health(kind, obj)
    assert status == "Progressing"
    assert "generation 1" in message
    bare = {"apiVersion": "tributary.dev/v1alpha1", "kind": kind, "metadata": {"name": "x", "generation": 1}}
    assert health(kind, bare)[0] == "Progressing"


@pytest.mark.parametrize("kind", KINDS)
def test_converging_is_progressing_with_the_reason(kind):
    obj = resource(kind, ("False", "WaitingForPods", "Waiting for the data-plane pod: refused"),
                   ("True", "WaitingForPods"), ("False", "WaitingForPods"))
    assert health(kind, obj) == ("Progressing", "WaitingForPods: Waiting for the data-plane pod: refused")


@pytest.mark.parametrize("kind", KINDS)
def test_a_spec_change_not_yet_observed_is_progressing_even_if_ready(kind):
    r = ACTIVE[kind]
    obj = resource(kind, r, ("False", r[1]), ("False", r[1]), observed=2, generation=3)
    assert health(kind, obj)[0] == "Progressing"


@pytest.mark.parametrize("kind", KINDS)
def test_stalled_is_degraded(kind):
    obj = resource(kind, ("False", "SecretNotFound", "Secret keys does not exist"),
                   ("False", "SecretNotFound"), ("True", "SecretNotFound", "Secret keys does not exist"))
    assert health(kind, obj) == ("Degraded", "SecretNotFound: Secret keys does not exist")


@pytest.mark.parametrize("kind", KINDS)
def test_paused_is_suspended(kind):
    msg = "Reconciliation is paused by the tributary.dev/pause-reconciliation annotation"
    obj = resource(kind, ("Unknown", "Paused", msg), ("False", "Paused"), ("False", "Paused"),
                   observed=2, generation=3)
    assert health(kind, obj) == ("Suspended", msg)


def test_an_invalid_query_is_degraded_with_its_position():
    msg = "From line 3, column 8 to line 3, column 12: Column 'PRIZE' not found in any table"
    obj = resource("AnalyticsApp", ("False", "InvalidQuery", msg), ("False", "InvalidQuery"),
                   ("True", "InvalidQuery", msg),
                   extra=[cond("QueryValid", "False", "UnknownObject", msg)])
    status, message = health("AnalyticsApp", obj)
    assert status == "Degraded"
    assert message == f"QueryValid UnknownObject: {msg}"


def test_the_checks_differ_only_where_the_kinds_do():
    texts = {k: (CHECKS / k / "health.lua").read_text().replace(k, "KIND") for k in KINDS}
    assert texts["Stream"] == texts["StreamConsumer"] == texts["DeliveryStream"]
    assert "QueryValid" in texts["AnalyticsApp"]


def test_objects_are_not_modified():
    obj = resource("Stream", ACTIVE["Stream"], ("False", "Active"), ("False", "Active"))
    before = copy.deepcopy(obj)
    health("Stream", obj)
    assert obj == before
