"""ScalingTargetHook: builds the scaler for a target kind from the cncf-kubernetes and amazon providers' hooks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from collections.abc import Mapping

from airflow.sdk import BaseHook

if TYPE_CHECKING:
    from include.headroom.scaling.executors import Scaler

KUBERNETES_KINDS = {"kubernetes_deployment", "kubernetes_statefulset"}
AWS_CLIENTS = {"aws_ecs_service": "ecs", "aws_autoscaling_group": "autoscaling", "aws_application_autoscaling": "application-autoscaling"}


class ScalingTargetHook(BaseHook):
    """The API client of one scaling target: ``KubernetesHook.get_conn()`` for Kubernetes kinds, an
    ``AwsBaseHook`` client (``ecs``, ``autoscaling``, ``application-autoscaling``) for AWS kinds.

    The connection comes from the target's ``conn_id`` field in the catalog, else the provider's default
    (``kubernetes_default``, ``aws_default``). A kubeconfig path or ``in_cluster`` lives in the Kubernetes
    connection's extra; region, credentials and ``endpoint_url`` in the AWS connection's.

    :param target_kind: the catalog target kind.
    :param target: the catalog target fields.
    """

    hook_name = "headroom scaling target"

    def __init__(self, target_kind: str, target: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if target_kind not in KUBERNETES_KINDS | set(AWS_CLIENTS):
            raise ValueError(f"target_kind={target_kind!r} has no scaler; expected one of {sorted(KUBERNETES_KINDS | set(AWS_CLIENTS))}")
        self.target_kind = target_kind
        self.target = dict(target or {})

    @property
    def conn_id(self) -> str:
        default = "kubernetes_default" if self.target_kind in KUBERNETES_KINDS else "aws_default"
        return self.target.get("conn_id") or default

    def get_conn(self) -> Any:
        if self.target_kind in KUBERNETES_KINDS:
            from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

            return KubernetesHook(conn_id=self.conn_id).get_conn()
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

        return AwsBaseHook(aws_conn_id=self.conn_id, client_type=AWS_CLIENTS[self.target_kind]).conn

    def get_scaler(self) -> Scaler:
        from include.headroom.scaling.executors import SCALERS

        client = self.get_conn()
        key = "kubernetes" if self.target_kind in KUBERNETES_KINDS else AWS_CLIENTS[self.target_kind]
        return SCALERS[self.target_kind]({key: client})

    def test_connection(self) -> tuple[bool, str]:
        try:
            state = self.get_scaler().read(self.target)
        except Exception as exc:  # reported to the user, not raised
            return False, f"{self.target_kind} {self.target}: {exc}"
        return True, f"{self.target_kind} {self.target} runs {state.replicas} replicas"
