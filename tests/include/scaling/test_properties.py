"""Properties of the decision engine (hypothesis): bounds, step limits, stabilization, floors, determinism."""

from __future__ import annotations

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from include.headroom.scaling.decide import plan_scaling
from include.headroom.scaling.policy import Recommendation, stabilize
from include.headroom.scaling.settings import policy_settings

AS_OF = pd.Timestamp("2026-11-01T12:00Z")  # a Sunday: no scheduled rule of the shipped config is active
SERVICES = ["blog-frontend", "orders-api", "checkout-api", "payments-gateway", "edge-router"]
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _recent(service, cpu, memory, error_rate, replicas):
    ts = pd.date_range(AS_OF - pd.Timedelta(minutes=15), periods=3, freq="5min")
    rows = []
    for metric, value in (("cpu_utilization", cpu), ("memory_utilization", memory), ("error_rate", error_rate), ("replicas", replicas)):
        rows += [{"ts": t, "service": service, "metric": metric, "value": value} for t in ts]
    return pd.DataFrame(rows)


def _forecast(service, yhat, trusted):
    capacity = pd.DataFrame([{"service": service, "metric": "throughput", "trusted": trusted}])
    forecast = pd.DataFrame({"service": service, "metric": "throughput", "ds": pd.date_range(AS_OF, periods=4, freq="1h"), "yhat": yhat})
    return capacity, forecast


inputs = st.fixed_dictionaries({
    "service": st.sampled_from(SERVICES),
    "cpu": st.floats(0.0, 100.0),
    "memory": st.floats(0.0, 100.0),
    "error_rate": st.floats(0.0, 0.2),
    "replicas": st.integers(1, 120),
    "yhat": st.floats(0.0, 50_000.0),
    "trusted": st.booleans(),
    "history": st.lists(st.tuples(st.integers(1, 900), st.integers(1, 120)), max_size=6),
})


def _decide(config, x):
    svc = config.service(x["service"])
    capacity, forecast = _forecast(svc.name, x["yhat"], x["trusted"])
    history = [Recommendation(AS_OF.timestamp() - age, r) for age, r in x["history"]]
    return svc, plan_scaling(config, svc, _recent(svc.name, x["cpu"], x["memory"], x["error_rate"], x["replicas"]), AS_OF,
                             capacity=capacity, forecast=forecast, history=history)


@FAST
@given(x=inputs)
def test_within_bounds_and_step_limit(config, x):
    svc, d = _decide(config, x)
    if d.action == "scale":
        assert svc.min_replicas <= d.desired_replicas <= svc.max_replicas
        assert abs(d.desired_replicas - d.current_replicas) <= d.max_step
        profile = config.tier(svc.tier).hpa_profile
        assert d.max_step == policy_settings().max_step(profile)
    else:
        assert d.desired_replicas == d.current_replicas


@FAST
@given(x=inputs)
def test_alarm_never_scales(config, x):
    _, d = _decide(config, x)
    if x["error_rate"] > config.scaling.alarm_error_rate:
        assert d.action == "alarm" and d.desired_replicas == d.current_replicas


@FAST
@given(x=inputs)
def test_forecast_alone_never_scales_in(config, x):
    svc, with_forecast = _decide(config, x)
    without = plan_scaling(config, svc, _recent(svc.name, x["cpu"], x["memory"], x["error_rate"], x["replicas"]), AS_OF,
                           history=[Recommendation(AS_OF.timestamp() - age, r) for age, r in x["history"]])
    # a forecast lowers the reactive answer only when trusted (the HPA then runs at predictive_floor.trusted_cpu_target),
    # and never below its floor
    if with_forecast.desired_replicas < without.desired_replicas:
        assert x["trusted"] and policy_settings().trusted_cpu_target is not None
        assert with_forecast.floor is not None
        assert with_forecast.desired_replicas >= min(with_forecast.floor, with_forecast.current_replicas)
    # a forecast alone never scales in: a scale-in is also what the HPA rule recommends
    if with_forecast.desired_replicas < with_forecast.current_replicas:
        assert with_forecast.recommendation < with_forecast.current_replicas
    if with_forecast.rule == "predictive_floor":
        assert x["trusted"] and with_forecast.desired_replicas > with_forecast.current_replicas


@FAST
@given(x=inputs)
def test_same_inputs_same_decision(config, x):
    assert _decide(config, x)[1] == _decide(config, x)[1]


@settings(max_examples=200, deadline=None)
@given(current=st.integers(1, 100), desired=st.integers(1, 100),
       history=st.lists(st.tuples(st.integers(1, 1200), st.integers(1, 100)), max_size=8))
def test_stabilization_respected(current, desired, history):
    behavior = policy_settings().behavior("general")
    now = 100_000.0
    recs = [Recommendation(now - age, r) for age, r in history]
    out = stabilize(now, current, desired, recs, behavior)
    up_window = [r.replicas for r in recs if r.at > now - behavior.scale_up.stabilization_s] + [desired]
    down_window = [r.replicas for r in recs if r.at > now - behavior.scale_down.stabilization_s] + [desired]
    if out > current:  # a scale-up goes no higher than the lowest recommendation of the up window
        assert out == min(up_window)
    if out < current:  # a scale-down goes no lower than the highest recommendation of the down window
        assert out == max(down_window)
    assert min(current, min(up_window)) <= out or out <= max(down_window)


@FAST
@given(x=inputs, throughput=st.floats(0.0, 50_000.0))
def test_the_measured_load_only_raises_a_saturated_answer(config, x, throughput):
    svc, without = _decide(config, x)
    history = [Recommendation(AS_OF.timestamp() - age, r) for age, r in x["history"]]
    recent = _recent(svc.name, x["cpu"], x["memory"], x["error_rate"], x["replicas"])
    recent = pd.concat([recent, recent[recent["metric"] == "replicas"].assign(metric="throughput", value=throughput)])
    capacity, forecast = _forecast(svc.name, x["yhat"], x["trusted"])
    with_load = plan_scaling(config, svc, recent, AS_OF, capacity=capacity, forecast=forecast, history=history)
    if x["cpu"] < config.scaling.saturated_cpu or x["error_rate"] > config.scaling.alarm_error_rate:
        assert (with_load.desired_replicas, with_load.rule) == (without.desired_replicas, without.rule)
    else:
        assert without.desired_replicas <= with_load.desired_replicas <= max(without.desired_replicas, config.replicas_for(svc, throughput))
        if with_load.rule == "saturated_load":
            assert with_load.recommendation == config.replicas_for(svc, throughput) > with_load.current_replicas
