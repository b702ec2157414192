"""Kubernetes manifests for the service, as data built by small pure functions.

The start and stop timing is written down once, in cdk_app/rollout.py, and every manifest
value that depends on it is derived from it; tests/test_rollout.py checks the bounds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cdk_app.rollout import PROBES, READINESS_GATE_LABEL, TIMING
from service import settings as svc

Manifest = dict[str, Any]

APP = "hello"
SERVICE_PORT = 80
CONTAINER_USER = 10001  # the Dockerfile's USER


@dataclass(frozen=True)
class Workload:
    namespace: str
    image: str
    min_replicas: int = 2
    max_replicas: int = 6
    target_cpu_percent: int = 70
    arm64: bool = False
    load_balancer_cidrs: tuple[str, ...] = ("10.0.0.0/24", "10.0.1.0/24")  # the public subnets


def labels() -> dict[str, str]:
    return {"app.kubernetes.io/name": APP, "app.kubernetes.io/component": "web"}


def namespace(w: Workload) -> Manifest:
    pss = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "audit", "warn")}
    pss |= {f"pod-security.kubernetes.io/{mode}-version": "latest" for mode in ("enforce", "audit", "warn")}
    # Pods created here get the load balancer controller's readiness gate (cdk_app/rollout.py).
    pss[READINESS_GATE_LABEL] = "enabled"
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": w.namespace, "labels": pss}}


def service_account(w: Workload) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": APP, "namespace": w.namespace, "labels": labels()},
        "automountServiceAccountToken": False,
    }


def _probe(path: str, *, period: int, failures: int, initial: int = 0) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "initialDelaySeconds": initial,
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def deployment(w: Workload) -> Manifest:
    container = {
        "name": APP,
        "image": w.image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": svc.PORT, "protocol": "TCP"}],
        "env": [
            {"name": "PORT", "value": str(svc.PORT)},
            {"name": "DRAIN_DELAY_SECONDS", "value": str(TIMING.drain_delay)},
            {"name": "DRAIN_TIMEOUT_SECONDS", "value": str(TIMING.drain_timeout)},
        ],
        "resources": {
            "requests": {"cpu": "100m", "memory": "64Mi"},
            "limits": {"cpu": "500m", "memory": "128Mi"},
        },
        # Startup gives the interpreter time to import; liveness restarts a wedged process;
        # readiness takes the pod out of rotation (and goes 503 on SIGTERM).
        "startupProbe": _probe(svc.LIVENESS_PATH, period=PROBES.startup_period, failures=PROBES.startup_failures),
        "livenessProbe": _probe(svc.LIVENESS_PATH, period=10, failures=3),
        "readinessProbe": _probe(
            svc.READINESS_PATH, period=PROBES.readiness_period, failures=PROBES.readiness_failures
        ),
        "lifecycle": {"preStop": {"sleep": {"seconds": TIMING.pre_stop}}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "runAsUser": CONTAINER_USER,
            "runAsGroup": CONTAINER_USER,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        # An emptyDir, not the image's /tmp: the root filesystem is read-only.
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108  # nosec B108
    }
    spread = [
        {
            "maxSkew": 1,
            "topologyKey": key,
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": labels()},
        }
        for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")
    ]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": APP, "namespace": w.namespace, "labels": labels()},
        "spec": {
            # No `replicas`: the HorizontalPodAutoscaler owns the count (it raises a new Deployment's
            # default 1 to minReplicas at once, metrics or not). A count here would be re-applied by
            # every deploy, cutting a scaled-out service back to the minimum under load.
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": labels()},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": labels()},
                "spec": {
                    "serviceAccountName": APP,
                    "automountServiceAccountToken": False,
                    "terminationGracePeriodSeconds": TIMING.termination_grace_period,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": CONTAINER_USER,
                        "runAsGroup": CONTAINER_USER,
                        "fsGroup": CONTAINER_USER,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "nodeSelector": {"kubernetes.io/arch": "arm64" if w.arm64 else "amd64"},
                    "topologySpreadConstraints": spread,
                    "containers": [container],
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}}],
                },
            },
        },
    }


def service(w: Workload) -> Manifest:
    # ClusterIP: the load balancer is the stack's ALB, which reaches pod IPs directly
    # through the TargetGroupBinding below.
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": APP, "namespace": w.namespace, "labels": labels()},
        "spec": {
            "type": "ClusterIP",
            "selector": labels(),
            "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def target_group_binding(w: Workload, target_group_arn: str) -> Manifest:
    """Registers the Service's pod IPs in the stack's ALB target group (AWS Load Balancer Controller)."""
    return {
        "apiVersion": "elbv2.k8s.aws/v1beta1",
        "kind": "TargetGroupBinding",
        "metadata": {"name": APP, "namespace": w.namespace, "labels": labels()},
        "spec": {
            "serviceRef": {"name": APP, "port": SERVICE_PORT},
            "targetGroupARN": target_group_arn,
            "targetType": "ip",
        },
    }


def network_policies(w: Workload) -> list[Manifest]:
    """Deny everything in the namespace, then allow the ALB in and DNS out.

    Kubernetes always lets a pod's own node in (kubelet probes). The ALB's addresses are in
    the public subnets; nothing else may reach the pods.
    """
    meta = {"namespace": w.namespace, "labels": labels()}
    deny = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "default-deny", **meta},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }
    from_alb = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "allow-load-balancer", **meta},
        "spec": {
            "podSelector": {"matchLabels": labels()},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [{"ipBlock": {"cidr": cidr}} for cidr in w.load_balancer_cidrs],
                    "ports": [{"protocol": "TCP", "port": svc.PORT}],
                }
            ],
        },
    }
    dns = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "allow-dns", **meta},
        "spec": {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [
                        {
                            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                        }
                    ],
                    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                }
            ],
        },
    }
    return [deny, from_alb, dns]


def disruption_budget(w: Workload) -> Manifest:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": APP, "namespace": w.namespace, "labels": labels()},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": labels()}},
    }


def autoscaler(w: Workload) -> Manifest:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": APP, "namespace": w.namespace, "labels": labels()},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": APP},
            "minReplicas": w.min_replicas,
            "maxReplicas": w.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": w.target_cpu_percent},
                    },
                }
            ],
        },
    }


def before_binding(w: Workload) -> list[Manifest]:
    """What the TargetGroupBinding needs first: the labelled namespace and the Service it names."""
    return [namespace(w), service(w)]


def after_binding(w: Workload) -> list[Manifest]:
    """The pods and what governs them, applied once the binding exists: the controller's webhook
    injects the readiness gate only into pods created after a binding refers to their Service."""
    return [
        service_account(w),
        deployment(w),
        disruption_budget(w),
        autoscaler(w),
        *network_policies(w),
    ]


def all_manifests(w: Workload) -> list[Manifest]:
    """Namespace first: KubernetesManifest applies each list in order."""
    return [*before_binding(w), *after_binding(w)]
