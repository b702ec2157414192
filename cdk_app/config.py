"""The app's configuration: one typed, validated object read from CDK context.

Defaults live in cdk.json; `cdk deploy -c key=value` (or the Makefile's variables) override
them. A bad value stops synth with one line naming the key and what is allowed.
"""

from __future__ import annotations

import difflib
import functools
import ipaddress
import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from checker_lambda import budgets, metrics, timing
from checker_lambda.settings import REGION_PATTERN, Labels, Settings, SettingsError, Target
from notifier.contract import Channel, parse_channels

ContextGetter = Callable[[str], Any]
# The stacks, and the outputs each one carries (tools/status.py and the deploy workflow read them).
STACK_NAME = "HelloWorldEks"  # the cluster and the service: HelloUrl, KubeconfigCommand
MONITORING_STACK_NAME = "HelloWorldHealth"  # checker, alarms, topic, dashboard: DashboardUrl, AlertTopicArn, ...
CHECKER_STACK_PREFIX = "HelloWorldChecker"  # one more checker per extra checkerRegions entry: -<region>


def checker_stack_name(region: str) -> str:
    """The stack of the checker in `region`, one of checkerRegions after the first."""
    return f"{CHECKER_STACK_PREFIX}-{region}"


def checker_stack_description(region: str, home: str) -> str:
    """The description of a checker stack in another region: `make preflight` reads the home
    region back from it (checker_stack_home) to tell this deployment's stacks from others'."""
    return f"Hello World health checker in {region}, publishing to {home}"


def checker_stack_home(description: str) -> str | None:
    found = re.search(r", publishing to ([a-z0-9-]+)$", description)
    return found.group(1) if found else None


@dataclass(frozen=True)
class SharedNames:
    """The names under which the cluster stack hands the other stacks what they use, fixed: derived
    from the cluster stack's name and from nothing a setting changes (a domain, a replaced load
    balancer). The one source of truth for them (docs/decisions.md §8)."""

    # An SSM parameter in the home region, read by every checker Lambda at run time (never by
    # CloudFormation): the listener's URL, what the service's target probes.
    url: str
    # CloudFormation exports the health stack imports: the AWS/ApplicationELB dimensions of its
    # ALB alarms, the load balancer's (app/<name>/<id>) and the target group's full names.
    load_balancer_export: str
    target_group_export: str

    @classmethod
    def of(cls, stack_name: str) -> SharedNames:
        return cls(
            url=f"/{stack_name}/url",
            load_balancer_export=f"{stack_name}-LoadBalancerFullName",
            target_group_export=f"{stack_name}-TargetGroupFullName",
        )


SHARED = SharedNames.of(STACK_NAME)

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# aws-cdk-lib's reading of an instance type (aws-ec2 instance-types.js, InstanceType.architecture):
# family, generation, capabilities; Graviton when the family is `a` (a1) or a capability is `g`.
_INSTANCE = re.compile(r"^([a-z]+)(\d{1,2})([a-z\-]*)\.([a-z0-9\-]+)$")


def arm64_instance(instance_type: str) -> bool:
    family, _, capabilities, _ = _INSTANCE.match(instance_type).groups()  # type: ignore[union-attr]
    return family == "a" or "g" in capabilities


@functools.cache
def known_instance_types() -> frozenset[str]:
    """Every EC2 instance type the pinned botocore's EC2 model lists (offline, no AWS call).
    Read once per process: the model is a 0.2 s parse, and a process has one botocore."""
    from botocore.loaders import create_loader  # the model files alone: no session, no profile

    model = create_loader().load_service_model("ec2", "service-2")
    return frozenset(model["shapes"]["InstanceType"]["enum"])


_DNS_LABEL = re.compile(r"^[a-z]([a-z0-9-]{0,18}[a-z0-9])?$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_ZONE_NAME = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d[a-z]$")
_ZONE_ID = re.compile(r"^Z[A-Z0-9]{4,31}$")
_REGION = re.compile(REGION_PATTERN)
_HTTPS = re.compile(r"^https://[^\s/]+\S*$")


@functools.cache
def lambda_regions() -> frozenset[str]:
    """Every region of every partition that has Lambda (where a checker runs), from the endpoint
    data the pinned botocore ships: offline, no AWS call. A made-up region matches the pattern,
    and the CDK would synthesize a stack for it that fails only at deploy."""
    from botocore.loaders import create_loader
    from botocore.regions import EndpointResolver

    # The data files directly, not a botocore Session: a session reads the user's AWS config, and a
    # synth must not depend on it (an AWS_PROFILE naming no profile would stop it).
    resolver = EndpointResolver(create_loader().load_data("endpoints"))
    return frozenset(
        region
        for partition in resolver.get_available_partitions()
        for region in resolver.get_available_endpoints("lambda", partition)
    )


MAX_CHECKER_REGIONS = 8
COMPOSITE_RULE_MAX_CHARS = 10_240  # PutCompositeAlarm AlarmRule maximum length
COMPOSITE_CHARS_PER_ALARM = 150  # a term with a realistic alarm ARN (~130 characters) and its operator
# Periods a CloudWatch alarm accepts (10 and 30 need high-resolution metrics); one probe each.
ALARM_PERIODS = (10, 30, 60)
# The Kubernetes API's public endpoint: at most this many CIDRs (EKS's per-cluster limit on public
# access CIDRs as we know it; not verified here: a lower real limit fails at deploy, not at synth).
MAX_API_CIDRS = 40
WORLD = "0.0.0.0/0"
# An IAM user's or role's ARN; `*` and `?` match as in an ArnLike condition (docs/security.md).
_PRINCIPAL = re.compile(r"^arn:aws(-cn|-us-gov)?:iam::\d{12}:(role|user)/[\w+=,.@/*?-]+$")
CAPACITY_TYPES = ("ON_DEMAND", "SPOT")
PERCENTILES = ("p50", "p90", "p95", "p99")


def _belongs_to_cdk(key: str) -> bool:
    """Context keys the CDK itself writes or reads: feature flags (`@aws-cdk/...`), the CLI's
    `aws:cdk:...` settings, lookup caches (`availability-zones:account=...`), acknowledged notices."""
    return key.startswith("@") or ":" in key or key in ("acknowledged-issue-numbers", "cli-telemetry")


class ConfigError(ValueError):
    """One line: which context key is wrong and what is allowed."""


@dataclass(frozen=True)
class AppConfig:
    alert_email: str | None
    alert_webhooks: tuple[str, ...]
    # The notifier's destinations, by the secret holding each URL or key (none: no notifier, cdk_app/notifier.py).
    alert_channels: tuple[Channel, ...]
    runbook_url: str | None
    name_prefix: str
    deploy_cluster: bool  # false: only the checker, alarms and dashboard, watching extraTargets
    checker_regions: tuple[str, ...]  # empty: one checker, in the region the CLI deploys to
    checker_quorum: int  # 0: a majority of checker_regions
    # The cluster stack keeps exporting what a health stack made before the stacks shared SSM
    # parameters imports, so upgrading it is not refused; on by default until every deployment
    # has run the new health stack once (docs/decisions.md §8).
    keep_exports: bool
    # cluster and nodes
    node_instance_type: str
    node_count: int
    node_max_count: int
    node_capacity_type: str
    # The public API endpoint's CIDRs; empty: private endpoint only (docs/decisions.md §7).
    api_cidrs: tuple[str, ...]
    admin_principals: tuple[str, ...]  # who may assume AdminRole; empty: no AdminRole
    nat_gateways: int
    availability_zones: tuple[str, ...]  # empty: the region's first two
    vpc_endpoints: bool
    # workload and its load balancer
    pod_min_replicas: int
    pod_max_replicas: int
    domain_name: str | None
    hosted_zone_id: str | None
    hosted_zone_name: str | None
    # checker
    schedule_minutes: int
    probe_interval_seconds: int
    probe_timeout_seconds: float
    confirm_probes: int
    extra_targets: tuple[Target, ...]
    # alarms
    cert_expiry_days: int
    latency_threshold_ms: int
    latency_percentile: str
    slo_target_percent: float
    log_retention_days: int

    @property
    def home_region(self) -> str | None:
        """The region of the cluster, the alarms, the topic and the dashboard, when pinned."""
        return self.checker_regions[0] if self.checker_regions else None

    @property
    def locations(self) -> tuple[str, ...]:
        """The checker's locations when there are several; empty for one (no Location dimension)."""
        return self.checker_regions if len(self.checker_regions) > 1 else ()

    @property
    def quorum(self) -> int:
        """Locations that must see a target down to page: checkerQuorum, or a majority."""
        return self.checker_quorum or len(self.locations) // 2 + 1

    @property
    def namespace(self) -> str:
        return self.name_prefix

    @property
    def cluster_name(self) -> str:
        return f"{self.name_prefix}-cluster"

    @property
    def node_arm64(self) -> bool:
        return arm64_instance(self.node_instance_type)

    @property
    def https(self) -> bool:
        return self.domain_name is not None

    @classmethod
    def from_context(cls, get: ContextGetter, keys: Iterable[str] = ()) -> AppConfig:
        """`keys`: every context key given; one this app does not read stops synth, since a
        misspelled key (`alertemail`) would otherwise be ignored and its setting silently lost."""
        reader = _Reader(get)
        config = reader.config()
        reader.no_unknown_keys(keys)
        return config

    def checker_timeout_seconds(self, *, remote: bool = False) -> int:
        """The checker Lambda's timeout: its last slot, probed and published at their slowest
        (to another region's CloudWatch when `remote`)."""
        return timing.invocation_timeout(
            schedule=self.schedule_minutes * 60,
            interval=self.probe_interval_seconds,
            slowest_probe=max([self.probe_timeout_seconds] + [t.timeout for t in self.extra_targets]),
            publish_budget=budgets.publish_budget(budgets.client_config(remote=remote)),
            # The service's target names its URL's parameter: read before the first slot.
            read_budget=budgets.url_read_budget(remote=remote) if self.deploy_cluster else 0.0,
        )

    def checker_settings(
        self,
        default_target: dict[str, Any] | None,
        *,
        location: str | None = None,
        metrics_region: str | None = None,
    ) -> Settings:
        """What the checker Lambda runs with: the service's own target (none without a cluster),
        then extraTargets; with several locations, its Location and the home region."""
        return Settings(
            # The service's target is the stack's own (stack.default_target): it names the SSM
            # parameter its URL is read from at run time, in the home region; it is built, not
            # parsed, and the only target read from a parameter (extraTargets give a URL).
            targets=(*([Target(**default_target)] if default_target else []), *self.extra_targets),
            interval=self.probe_interval_seconds,
            schedule=self.schedule_minutes * 60,
            confirm=self.confirm_probes,
            location=location,
            metrics_region=metrics_region,
        )

    def checker_environment(
        self, default_target: dict[str, Any] | None, *, location: str | None = None, metrics_region: str | None = None
    ) -> dict[str, str]:
        """The Lambda's environment: Settings owns its variables (to_env, read back by from_env)."""
        return self.checker_settings(default_target, location=location, metrics_region=metrics_region).to_env()


# The checker's rules over its settings as a whole, naming what the CDK user typed.
CONTEXT_LABELS: Labels = {
    "targets": lambda _: "context key 'extraTargets' (with the service's own target 'hello')",
    "interval": lambda v: f"context key 'probeIntervalSeconds'={v:g}",
    "schedule": lambda v: f"context key 'scheduleMinutes'={float(v) / 60:g}",  # type: ignore[arg-type]
    "confirm": lambda v: f"context key 'confirmProbes'={v}",
    "timeout": lambda v: f"the probe timeout {v:g}s (context key 'probeTimeoutSeconds', or an extraTargets timeout)",
}


class _Reader:
    """Reads and checks one key at a time; every error names its key."""

    def __init__(self, get: ContextGetter) -> None:
        self.get = get
        self.read: set[str] = set()

    def raw(self, key: str) -> Any:
        self.read.add(key)
        value = self.get(key)
        if value is None:
            raise ConfigError(f"context key '{key}' is missing (its default belongs in cdk.json)")
        return value

    @staticmethod
    def fail(key: str, value: Any, allowed: str) -> ConfigError:
        return ConfigError(f"context key '{key}'={value!r} is invalid: allowed is {allowed}")

    def integer(self, key: str, low: int, high: int, allowed: tuple[int, ...] = ()) -> int:
        value = self.raw(key)
        try:
            number = int(value)
            ok = not isinstance(value, (bool, float)) and str(number) == str(value).strip()
        except (TypeError, ValueError):
            ok = False
        if not ok or (allowed and number not in allowed) or not low <= number <= high:
            raise self.fail(key, value, f"one of {list(allowed)}" if allowed else f"an integer {low}..{high}")
        return number

    def number(self, key: str, low: float, high: float) -> float:
        value = self.raw(key)
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = float("nan")
        if isinstance(value, bool) or not low <= number <= high:
            raise self.fail(key, value, f"a number {low:g}..{high:g}")
        return number

    def boolean(self, key: str) -> bool:
        value = self.raw(key)
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "false"):
            return str(value).lower() == "true"
        raise self.fail(key, value, "true or false")

    def choice(self, key: str, options: tuple[str, ...]) -> str:
        value = self.raw(key)
        if value not in options:
            raise self.fail(key, value, f"one of {list(options)}")
        return str(value)

    def text(self, key: str, pattern: re.Pattern[str], what: str, *, optional: bool = False) -> str | None:
        value = str(self.raw(key)).strip()
        if optional and value == "":
            return None
        if not pattern.match(value):
            raise self.fail(key, value, what + (" or ''" if optional else ""))
        return value

    def json_list(self, key: str) -> list[Any]:
        value = self.raw(key)
        if isinstance(value, str):
            try:
                value = json.loads(value) if value.strip() else []
            except json.JSONDecodeError as exc:
                raise ConfigError(f"context key '{key}' is not valid JSON: {exc}") from None
        if not isinstance(value, list):
            raise self.fail(key, value, "a JSON list")
        return value

    def cidrs(self, key: str) -> tuple[str, ...]:
        values = self.json_list(key)
        for v in values:
            try:
                ipaddress.IPv4Network(str(v), strict=True)
            except ValueError:
                raise self.fail(key, v, "a list of IPv4 CIDRs like 203.0.113.0/24") from None
        values = list(dict.fromkeys(str(v) for v in values))
        if WORLD in values and len(values) > 1 or len(values) > MAX_API_CIDRS:
            allowed = f'[] (private), 1..{MAX_API_CIDRS} CIDRs, or ["{WORLD}"] alone (the internet)'
            raise self.fail(key, values, allowed)
        return tuple(values)

    def principals(self, key: str) -> tuple[str, ...]:
        values = self.json_list(key)
        for v in values:
            if not isinstance(v, str) or not _PRINCIPAL.match(v):
                raise self.fail(key, v, "a list of IAM role or user ARNs like arn:aws:iam::123456789012:role/Admin")
        return tuple(dict.fromkeys(values))

    def instance_type(self, key: str) -> str:
        value = str(self.raw(key)).strip()
        if not _INSTANCE.match(value) or value not in known_instance_types():
            import botocore

            raise self.fail(
                key,
                value,
                f"an EC2 instance type (botocore {botocore.__version__} lists them) like t3.medium or t4g.medium",
            )
        return value

    def zones(self, key: str) -> tuple[str, ...]:
        """Zone names (EKS rejects some zones by zone ID; which name maps to which ID differs per account)."""
        values = self.json_list(key)
        for v in values:
            if not isinstance(v, str) or not _ZONE_NAME.match(v):
                raise self.fail(key, v, "a list of Availability Zone names like us-east-1b")
        if values and not 2 <= len(values) <= 3:
            raise self.fail(key, values, "[] or 2..3 zone names (EKS needs subnets in at least two zones)")
        if len({v[:-1] for v in values}) > 1 or len(set(values)) != len(values):
            raise self.fail(key, values, "distinct zones of one region")
        return tuple(values)

    def webhooks(self, key: str) -> tuple[str, ...]:
        values = self.json_list(key)
        for v in values:
            if not isinstance(v, str) or not re.match(r"^https://[^\s/]+\S*$", v):
                raise self.fail(key, v, "a list of https:// URLs")
        return tuple(values)

    def channels(self, key: str) -> tuple[Channel, ...]:
        try:
            return parse_channels(self.json_list(key), key)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    def regions(self, key: str) -> tuple[str, ...]:
        values = self.json_list(key)
        for v in values:
            if not isinstance(v, str) or not _REGION.match(v):
                raise self.fail(key, v, "a list of AWS region names like eu-west-1, the home region first")
        if len(set(values)) != len(values) or len(values) > MAX_CHECKER_REGIONS:
            raise self.fail(key, values, f"[] or 1..{MAX_CHECKER_REGIONS} distinct regions")
        known = lambda_regions()
        for v in values:
            if v not in known:
                near = difflib.get_close_matches(v, sorted(known), n=1)
                hint = f" (did you mean {near[0]!r}?)" if near else ""
                raise ConfigError(
                    f"context key '{key}' has {v!r}, which is not an AWS region with Lambda{hint}: allowed are "
                    "the regions in botocore's endpoint data, e.g. eu-west-1"
                )
        return tuple(values)

    def targets(self, key: str) -> tuple[Target, ...]:
        values = self.json_list(key)
        if not all(isinstance(t, dict) for t in values):
            raise self.fail(key, values, "a list of {name, url, ...} objects")
        for i, t in enumerate(values):
            # The checker's role may read the service's own URL parameter only, and only that read
            # is counted in a run's time (checker_limits): every run would fail.
            given = sorted({"url_parameter", "url_parameter_region"} & set(t))
            if given:
                raise ConfigError(
                    f"context key '{key}'[{i}] has {', '.join(repr(k) for k in given)}: allowed is url (an http:// "
                    "or https:// URL); only the service's own target is read from a parameter"
                )
        try:
            return tuple(Target.parse(t, f"{key}[{i}]") for i, t in enumerate(values))
        except SettingsError as exc:
            raise ConfigError(f"context key {exc}") from None

    def config(self) -> AppConfig:
        c = AppConfig(
            alert_email=self.text("alertEmail", _EMAIL, "an email address", optional=True),
            alert_webhooks=self.webhooks("alertWebhooks"),
            alert_channels=self.channels("alertChannels"),
            runbook_url=self.text("runbookUrl", _HTTPS, "an https:// URL", optional=True),
            name_prefix=str(self.text("namePrefix", _DNS_LABEL, "1-20 of a-z 0-9 -, starting with a letter")),
            deploy_cluster=self.boolean("cluster"),
            checker_regions=self.regions("checkerRegions"),
            checker_quorum=self.integer("checkerQuorum", 0, MAX_CHECKER_REGIONS),
            keep_exports=self.boolean("keepExports"),
            node_instance_type=self.instance_type("nodeInstanceType"),
            node_count=self.integer("nodeCount", 1, 20),
            node_max_count=self.integer("nodeMaxCount", 1, 50),
            node_capacity_type=self.choice("nodeCapacityType", CAPACITY_TYPES),
            api_cidrs=self.cidrs("apiCidrs"),
            admin_principals=self.principals("adminPrincipals"),
            nat_gateways=self.integer("natGateways", 1, 2),
            availability_zones=self.zones("availabilityZones"),
            vpc_endpoints=self.boolean("vpcEndpoints"),
            pod_min_replicas=self.integer("podMinReplicas", 2, 50),
            pod_max_replicas=self.integer("podMaxReplicas", 2, 100),
            domain_name=self.text("domainName", _DOMAIN, "a DNS name like hello.example.com", optional=True),
            hosted_zone_id=self.text("hostedZoneId", _ZONE_ID, "a Route 53 zone ID like Z0123456789ABC", optional=True),
            hosted_zone_name=self.text(
                "hostedZoneName", _DOMAIN, "the zone's DNS name like example.com", optional=True
            ),
            schedule_minutes=self.integer("scheduleMinutes", 1, 15),
            probe_interval_seconds=self.integer("probeIntervalSeconds", 10, 60, ALARM_PERIODS),
            probe_timeout_seconds=self.number("probeTimeoutSeconds", 0.5, 30),
            confirm_probes=self.integer("confirmProbes", 2, 10),
            extra_targets=self.targets("extraTargets"),
            cert_expiry_days=self.integer("certExpiryDays", 1, 365),
            latency_threshold_ms=self.integer("latencyThresholdMs", 10, 60_000),
            latency_percentile=self.choice("latencyPercentile", PERCENTILES),
            slo_target_percent=self.number("sloTargetPercent", 90, 99.99),
            log_retention_days=self.integer("logRetentionDays", 1, 3653, LOG_RETENTION_DAYS),
        )
        self.cross_checks(c)
        return c

    def no_unknown_keys(self, keys: Iterable[str]) -> None:
        by_lower = {k.lower(): k for k in self.read}
        for key in sorted(set(keys) - self.read):
            if _belongs_to_cdk(key):
                continue
            close = difflib.get_close_matches(key.lower(), by_lower, n=1, cutoff=0.6)
            hint = f"did you mean '{by_lower[close[0]]}'?" if close else "the keys this app reads are in cdk.json"
            raise ConfigError(f"context key '{key}' is unknown: {hint}")

    @staticmethod
    def silent_rule_fits(c: AppConfig) -> None:
        """The 'checkers silent' composite names every group of heartbeat alarms that leaves fewer
        than a quorum watching (a composite rule cannot count); AWS caps a rule at 10,240
        characters (PutCompositeAlarm, AlarmRule). Refuse at synth what CloudFormation would."""
        n = len(c.locations)
        if n < 2:
            return
        silent = n - c.quorum + 1
        alarms = math.comb(n, silent) * silent if silent > 1 else n
        # ALARM("arn:aws:cloudwatch:<region>:<account>:alarm:<stack>-<logical id>-<suffix>") AND ...
        if alarms * COMPOSITE_CHARS_PER_ALARM > COMPOSITE_RULE_MAX_CHARS:
            raise ConfigError(
                f"context keys 'checkerRegions' ({n} regions) and 'checkerQuorum' ({c.quorum}) are invalid together: "
                f"the 'checkers silent' alarm would name {alarms} heartbeat alarms, more than a composite alarm's "
                f"{COMPOSITE_RULE_MAX_CHARS}-character rule holds; allowed is at most 6 regions, or a quorum "
                "closer to the number of regions"
            )

    def cross_checks(self, c: AppConfig) -> None:
        if not c.deploy_cluster and not c.extra_targets:
            raise self.fail("extraTargets", [], "at least one target when cluster is false (nothing else to watch)")
        if c.checker_quorum > max(1, len(c.locations)):
            raise self.fail(
                "checkerQuorum", c.checker_quorum, f"0 (a majority) or 1..{max(1, len(c.locations))} (checkerRegions)"
            )
        self.silent_rule_fits(c)
        if c.node_max_count < c.node_count:
            raise self.fail("nodeMaxCount", c.node_max_count, f"at least nodeCount ({c.node_count})")
        if c.pod_max_replicas < c.pod_min_replicas:
            raise self.fail("podMaxReplicas", c.pod_max_replicas, f"at least podMinReplicas ({c.pod_min_replicas})")
        dns = (c.domain_name, c.hosted_zone_id, c.hosted_zone_name)
        if any(dns) and not all(dns):
            raise ConfigError(
                "context keys 'domainName', 'hostedZoneId' and 'hostedZoneName' are invalid: "
                "allowed is all three set, or all three ''"
            )
        if (
            c.domain_name
            and c.hosted_zone_name
            and not (c.domain_name == c.hosted_zone_name or c.domain_name.endswith("." + c.hosted_zone_name))
        ):
            raise self.fail("domainName", c.domain_name, f"a name inside hostedZoneName ({c.hosted_zone_name})")
        placeholder = {"name": "hello", "url": "http://placeholder/hello", "timeout": c.probe_timeout_seconds}
        try:  # the checker's own rules, on what the Lambda will receive, in the user's words
            c.checker_settings(placeholder if c.deploy_cluster else None).validate(CONTEXT_LABELS)
        except SettingsError as exc:
            raise ConfigError(str(exc)) from None
        self.checker_limits(c)

    @staticmethod
    def checker_limits(c: AppConfig) -> None:
        """What one checker run must fit in: one PutMetricData call, and Lambda's longest timeout."""
        schedule = c.schedule_minutes * 60
        probes = schedule // c.probe_interval_seconds
        https = [c.https] + [t.https for t in c.extra_targets]
        datums = probes * sum(metrics.most_datums_per_probe(https=h) for h in https) + metrics.EXTRA_DATUMS_PER_RUN
        if datums > metrics.MAX_DATUMS_PER_CALL:
            raise ConfigError(
                "context keys 'scheduleMinutes', 'probeIntervalSeconds' and 'extraTargets' are invalid together: "
                f"one checker run could produce {datums} datapoints, more than one PutMetricData call takes "
                f"({metrics.MAX_DATUMS_PER_CALL}); allowed is fewer targets, a shorter schedule or a longer interval"
            )
        read = budgets.url_read_budget(remote=True)  # the slower of the two
        if c.deploy_cluster and timing.first_slot_delay(
            interval=c.probe_interval_seconds, read_budget=read
        ) > timing.slot_tolerance(c.probe_interval_seconds):
            raise ConfigError(
                f"context key 'probeIntervalSeconds'={c.probe_interval_seconds} is invalid: the checker's read of "
                f"its URL ({read:g} s at its slowest) would make the first slot later than it may be probed"
            )
        run_for = c.checker_timeout_seconds(remote=len(c.locations) > 1)
        if run_for > timing.LAMBDA_MAX_TIMEOUT:
            raise ConfigError(
                "context keys 'scheduleMinutes', 'probeIntervalSeconds' and 'probeTimeoutSeconds' are invalid "
                "together: "
                f"a checker run needs {run_for} s to probe its last slot and publish it, more than Lambda's "
                f"{timing.LAMBDA_MAX_TIMEOUT} s; allowed is a shorter schedule or a longer interval"
            )


# CloudWatch Logs accepts only these retention periods.
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)
