"""The scaling kernel against cases in the style of the Kubernetes horizontal controller's own tests
(``pkg/controller/podautoscaler``: replica_calculator_test.go, horizontal_test.go), transcribed as
(current, metric, pods reporting, target, expected) and controller-loop scenarios."""

from __future__ import annotations

from dataclasses import replace

import pytest

from include.headroom.scaling.kernel import (
    Action,
    KernelSettings,
    ScalingState,
    Signals,
    kernel_settings,
    metric_replicas,
    next_replicas,
)
from include.headroom.scaling.policy import Behavior, PolicyType, Recommendation, ScalingPolicy, ScalingRules
from include.headroom.scaling.settings import policy_settings

NOW = 1_000_000.0


def _settings(min_replicas=1, max_replicas=10, down_window=300, up_window=0, max_step=100, **kw) -> KernelSettings:
    """A plain HPA: defaults of autoscaling/v2 (up: 0 s, +100 % or +4 pods per 15 s; down: 300 s window, -100 % per 15 s)."""
    behavior = Behavior(
        ScalingRules(up_window, (ScalingPolicy(PolicyType.PERCENT, 100, 15), ScalingPolicy(PolicyType.PODS, 4, 15))),
        ScalingRules(down_window, (ScalingPolicy(PolicyType.PERCENT, 100, 15),)),
    )
    base = dict(min_replicas=min_replicas, max_replicas=max_replicas, cpu_target=50.0, memory_target=80.0, tolerance=0.1,
                behavior=behavior, max_step=max_step, scale_out_cooldown_s=0, scale_in_cooldown_s=0, alarm_error_rate=0.05,
                scale_out_step=2)
    base.update(kw)
    return KernelSettings(**base)


# -- the replica calculator -------------------------------------------------------------------------

@pytest.mark.parametrize(("current", "value", "reporting", "target", "expected"), [
    (3, 90.0, 3, 30.0, 9),      # TestReplicaCalcScaleUp-like: ratio 3 -> 9
    (5, 28.0, 5, 50.0, 3),      # TestReplicaCalcScaleDown-like: ceil(5 * 0.56) = 3
    (3, 52.0, 3, 50.0, 3),      # TestReplicaCalcTolerance: inside 10 %
    (4, 20.0, 3, 50.0, 4),      # 3 of 4 pods at 20 %, the missing one at 100 %: 40 % -> ceil(4 * 0.8) = 4
    (4, 10.0, 2, 50.0, 4),      # 2 of 4 at 10 %, missing at 100 %: 55 % -> the direction flips: no change
])
def test_replica_calculator(current, value, reporting, target, expected):
    assert metric_replicas(current, value, target, 0.1, reporting) == expected


def test_missing_pods_on_scale_up_count_as_zero():
    # TestReplicaCalcScaleUpCMUnreadyLessScale-like: 2 of 4 pods report 100 % of a 50 % target: ratio 2 alone,
    # with the missing two at 0 %: 50 % -> ratio 1.0 -> no change; with 3 of 4 at 100 %: 75 % -> ceil(4 * 1.5) = 6
    assert metric_replicas(4, 100.0, 50.0, 0.1, reporting=2) == 4
    assert metric_replicas(4, 100.0, 50.0, 0.1, reporting=3) == 6
    # all reporting: plain ceil(4 * 2) = 8
    assert metric_replicas(4, 100.0, 50.0, 0.1) == 8


def test_missing_pods_on_scale_down_count_at_max_of_100_and_target():
    # 3 of 6 pods report 10 % of a 50 % target; missing at 100 %: (30 + 300) / 6 = 55 % -> flips up -> keep 6
    assert metric_replicas(6, 10.0, 50.0, 0.1, reporting=3) == 6
    # 5 of 6 at 10 %: (50 + 100) / 6 = 25 % -> ratio 0.5 -> ceil(3) = 3
    assert metric_replicas(6, 10.0, 50.0, 0.1, reporting=5) == 3
    with pytest.raises(ValueError, match="reporting=7 pods must be in"):
        metric_replicas(6, 10.0, 50.0, 0.1, reporting=7)


# -- the controller loop ---------------------------------------------------------------------------

def test_first_seen_target_does_not_scale_in_during_the_first_window():
    s = _settings(down_window=300)
    low = Signals(cpu=10.0)
    first = next_replicas(ScalingState(NOW, 8, first_seen=True), low, s)
    # maybeInitScaleDownStabilizationWindow: the current 8 is recorded, so the window's max holds 8
    assert (first.action, first.rule, first.desired, first.seed, first.recommendation) == (Action.NONE, "stabilization", 8, 8, 2)
    history = (Recommendation(NOW, first.seed), Recommendation(NOW, first.recommendation))
    still = next_replicas(ScalingState(NOW + 240, 8, history), low, s)
    assert still.desired == 8
    after = next_replicas(ScalingState(NOW + 301, 8, (*history, Recommendation(NOW + 240, 2))), low, s)
    assert (after.action, after.desired) == (Action.SCALE, 2)
    # without a scale-down window nothing is recorded (the controller only seeds a window > 0)
    none = next_replicas(ScalingState(NOW, 8, first_seen=True), low, _settings(down_window=0))
    assert (none.seed, none.desired) == (None, 2)


def test_not_first_seen_scales_in_at_once_without_history():
    d = next_replicas(ScalingState(NOW, 8), Signals(cpu=10.0), _settings(down_window=300))
    assert (d.action, d.desired) == (Action.SCALE, 2)


def test_recommendation_zero_is_kept_in_the_window():
    # a recommendation of 0 in the down window is a real value: the max is still the 5 recorded before
    history = (Recommendation(NOW - 100, 0), Recommendation(NOW - 50, 5))
    d = next_replicas(ScalingState(NOW, 5, history), Signals(cpu=10.0), _settings(min_replicas=0))
    assert d.desired == 5
    # and in the up window a 0 holds a scale-up back (min over the window), as the controller does
    d = next_replicas(ScalingState(NOW, 2, (Recommendation(NOW - 10, 0),)), Signals(cpu=100.0), _settings(min_replicas=0, up_window=60))
    assert d.desired == 2


def test_scale_from_zero_uses_the_load():
    # currentReplicas == 0: replicas = ceil(usage ratio), here the load's replicas at target
    s = _settings(min_replicas=0, max_replicas=10)
    d = next_replicas(ScalingState(NOW, 0), Signals(load_replicas=3), s)
    assert (d.action, d.rule, d.desired) == (Action.SCALE, "scale_from_zero", 3)
    idle = next_replicas(ScalingState(NOW, 0), Signals(load_replicas=0), s)
    assert (idle.action, idle.desired) == (Action.NONE, 0)
    capped = next_replicas(ScalingState(NOW, 0), Signals(load_replicas=50), s)
    assert capped.desired == 10
    unknown = next_replicas(ScalingState(NOW, 0), Signals(), s)
    assert (unknown.action, unknown.desired) == (Action.NONE, 0)


@pytest.mark.parametrize(("current", "expected", "side"), [(12, 10, "above max"), (1, 2, "below min")])
def test_out_of_bounds_moves_to_the_bound(current, expected, side):
    # "Current number of replicas above Spec.MaxReplicas": desired = max, whatever the metrics say
    s = _settings(min_replicas=2, max_replicas=10)
    d = next_replicas(ScalingState(NOW, current), Signals(cpu=200.0 if current > 10 else 1.0), s)
    assert (d.action, d.rule, d.desired, d.planned) == (Action.SCALE, "out_of_bounds", expected, expected)
    assert side in d.reason


def test_far_out_of_bounds_alarms_and_plans_the_move():
    s = _settings(min_replicas=2, max_replicas=10, max_step=6)
    d = next_replicas(ScalingState(NOW, 40), Signals(cpu=50.0), s)
    assert (d.action, d.rule, d.desired, d.planned) == (Action.ALARM, "out_of_bounds", 40, 10)
    assert "planned" in d.reason and "step limit of 6" in d.reason


def test_error_rate_alarm_wins_over_a_near_bound_move():
    d = next_replicas(ScalingState(NOW, 12), Signals(cpu=50.0, error_rate=0.2), _settings(max_replicas=10))
    assert (d.action, d.rule, d.desired) == (Action.ALARM, "error_rate_alarm", 12)


def test_agreed_scale_in_is_quicker_only_when_the_forecast_agrees():
    s = _settings(down_window=600, agreed_scale_down_stabilization_s=60)
    history = (Recommendation(NOW - 200, 8),)
    held = next_replicas(ScalingState(NOW, 8, history), Signals(cpu=20.0), s)
    assert held.desired == 8  # the 600 s window still holds the 8
    agreed = next_replicas(ScalingState(NOW, 8, history), Signals(cpu=20.0, predictive_floor=3), s)
    assert (agreed.action, agreed.desired) == (Action.SCALE, 4)  # ceil(8 * 20 / 50) = 4, forecast needs only 3
    disagree = next_replicas(ScalingState(NOW, 8, history), Signals(cpu=20.0, predictive_floor=6), s)
    assert disagree.desired == 8  # the forecast wants more than reactive: no quick scale-in, and the window holds


def test_the_hpa_runs_at_the_trusted_target_only_under_a_trusted_floor():
    s = _settings(max_replicas=20, down_window=0, trusted_cpu_target=80.0)
    # 10 pods at 60 % of a 50 % target: reactive alone scales out to ceil(10 * 1.2) = 12
    assert next_replicas(ScalingState(NOW, 10), Signals(cpu=60.0), s).desired == 12
    # under a trusted floor of 6 the target is 80 %: ceil(10 * 0.75) = 8, and the floor is below it
    hot = next_replicas(ScalingState(NOW, 10), Signals(cpu=60.0, predictive_floor=6), s)
    assert (hot.action, hot.desired) == (Action.SCALE, 8)
    assert "vs target 80%" in hot.reason
    # a floor above the hotter answer still holds: the forecast's upper quantile decides
    assert next_replicas(ScalingState(NOW, 10), Signals(cpu=60.0, predictive_floor=9), s).desired == 9
    # no trusted target configured: the floor changes nothing about the HPA rule
    plain = _settings(max_replicas=20, down_window=0)
    assert next_replicas(ScalingState(NOW, 10), Signals(cpu=60.0, predictive_floor=6), plain).desired == 12


def test_live_settings_come_from_the_catalog_and_scaling_yaml(config):
    svc = config.service("payments-gateway")
    ks = kernel_settings(config, svc, policy_settings())
    assert (ks.min_replicas, ks.max_replicas, ks.cpu_target, ks.max_step) == (10, 100, 50.0, 30)
    assert ks.behavior.scale_down.stabilization_s == 300
    assert config.replicas_for(svc, 150 * 0.5 * 12) == 12
    assert config.replicas_for(svc, 10.0, clip=True) == 10


def test_a_saturated_cpu_sizes_the_scale_out_from_the_measured_load():
    s = _settings(max_replicas=40, cpu_target=70.0, saturated_cpu=95.0)
    # 10 pods at 97 % of a 70 % target: the CPU rule says ceil(10 * 1.386) = 14, the load needs 19 at the target
    hot = next_replicas(ScalingState(NOW, 10), Signals(cpu=97.0, load_replicas=19), s)
    assert (hot.action, hot.rule, hot.desired, hot.recommendation) == (Action.SCALE, "saturated_load", 19, 19)
    assert "cpu saturated (>= 95%): the load needs 19 replicas" in hot.reason
    # below the saturation level the CPU ratio is trusted, whatever the load says: ceil(10 * 94 / 70) = 14
    warm = next_replicas(ScalingState(NOW, 10), Signals(cpu=94.0, load_replicas=19), s)
    assert (warm.rule, warm.desired) == ("hpa_cpu", 14)
    # the load never lowers the CPU rule's answer, and without the setting (plain HPA) it is not read
    assert next_replicas(ScalingState(NOW, 10), Signals(cpu=97.0, load_replicas=12), s).desired == 14
    assert next_replicas(ScalingState(NOW, 10), Signals(cpu=97.0, load_replicas=19),
                         _settings(max_replicas=40, cpu_target=70.0)).desired == 14
    # no load measured: the CPU rule alone; the rate policy (+100 % per 15 s), [min, max] and the step limit bound the load's answer
    assert next_replicas(ScalingState(NOW, 10), Signals(cpu=97.0), s).desired == 14
    assert next_replicas(ScalingState(NOW, 10), Signals(cpu=97.0, load_replicas=60), s).desired == 20
    assert next_replicas(ScalingState(NOW, 10), Signals(cpu=97.0, load_replicas=60), replace(s, max_replicas=17)).desired == 17
    assert next_replicas(ScalingState(NOW, 10), Signals(cpu=97.0, load_replicas=60), replace(s, max_step=5)).desired == 15


def test_the_saturation_level_comes_from_scaling_yaml(config):
    import yaml

    from include.headroom.configfile import CONFIG_DIR
    from include.headroom.exceptions import ConfigError
    from include.headroom.scaling.settings import parse_scaling

    assert policy_settings().saturated_cpu == 95.0
    assert kernel_settings(config, config.service("orders-api"), policy_settings()).saturated_cpu == 95.0
    raw = yaml.safe_load((CONFIG_DIR / "scaling.yaml").read_text())
    del raw["target_tracking"]["saturated_cpu_utilization"]
    assert parse_scaling(raw).saturated_cpu is None
    raw["target_tracking"]["saturated_cpu_utilization"] = 120
    with pytest.raises(ConfigError, match="saturated_cpu_utilization=120.0 must be in"):
        parse_scaling(raw)
