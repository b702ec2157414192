"""The account, region and configuration the checks ask about: the clients, and the answers several
checks share (identity, zones, the stack), each asked once."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from cdk_app.config import STACK_NAME, AppConfig
from tools.preflight.results import Check, Fail, Result, Skip, Warn, explain
from tools.preflight.sources import ROOT

# Looking for checker stacks in every enabled region (17 by default, more opted in): one call per
# region, all at once, each at most REGION_CALL's timeouts; the regions still silent when the
# sweep's time is up are named as unread. Within DEADLINE_SECONDS with room to spare.
SWEEP_SECONDS = 12.0
REGION_CALL = Config(
    connect_timeout=2,
    read_timeout=3,
    retries={"total_max_attempts": 2, "mode": "standard"},
    user_agent_extra="preflight",
)


@dataclass(frozen=True)
class Quota:
    label: str
    service_code: str
    quota_code: str


# Service Quotas codes with their official names (`aws service-quotas list-service-quotas
# --service-code vpc|ec2` lists them). The two vpc ones are in moto's copy of the AWS table
# (moto/servicequotas/resources/default_quotas/vpc.py); L-0263D0A3 is the code public quota
# checkers (e.g. cortexlabs/cortex) and Terraform modules use for EC2-VPC Elastic IPs.
VPCS = Quota("VPCs per Region", "vpc", "L-F678F1CE")
ELASTIC_IPS = Quota("EC2-VPC Elastic IPs", "ec2", "L-0263D0A3")
NAT_GATEWAYS = Quota("NAT gateways per Availability Zone", "vpc", "L-FE5A380F")


CREATION_FAILURES = ("ROLLBACK_COMPLETE", "ROLLBACK_FAILED")  # what `cdk deploy` deletes and creates again


class Preflight:
    """What the checks ask, over clients the caller built (real ones, or stubbed in tests); `run`
    runs one Check and turns what it found or raised into its line."""

    def __init__(
        self,
        config: AppConfig,
        clients: Mapping[str, Any],
        *,
        region: str | None,
        region_source: str = "",
        session_error: BaseException | None = None,
        known_regions: frozenset[str] = frozenset(),
        docker: str = "docker",
        assembly: Path = ROOT / "cdk.out",
        bootstrap_qualifier: str = "hnb659fds",
        other_ssm: Mapping[str, Any] | None = None,
        regional: Callable[[str, str], Any] | None = None,
        sweep_seconds: float = SWEEP_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.other_ssm = dict(other_ssm or {})
        # (service, region) -> a client for any region, with short timeouts (the checker stacks sweep)
        self.regional = regional
        self.sweep_seconds = sweep_seconds
        self.clock = clock  # the sweep's deadline is on it (a test moves it on its own terms)
        self.config = config
        self.clients = clients
        self.region = region
        self.region_source = region_source
        self.session_error = session_error
        self.known_regions = known_regions
        self.docker = docker
        self.assembly = assembly
        self.bootstrap_parameter = f"/cdk-bootstrap/{bootstrap_qualifier}/version"
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._memo: dict[str, tuple[Any, BaseException | None]] = {}

    def run(self, check: Check) -> Result:
        name = check.name
        if check.cluster_only and not self.config.deploy_cluster:
            return Result("skip", name, "cluster=false: a checker-only deploy does not need it")
        try:
            return Result("ok", name, check.function(self))
        except Fail as exc:
            return Result("FAIL", name, str(exc))
        except Warn as exc:
            return Result("warn", name, str(exc))
        except Skip as exc:
            return Result("skip", name, str(exc))
        except (BotoCoreError, ClientError) as exc:
            return Result("FAIL", name, explain(exc))
        except Exception as exc:  # noqa: BLE001  # every check must print its line, even on a bug here
            return Result("FAIL", name, f"preflight itself failed ({type(exc).__name__}: {exc}); please report it")

    # Shared answers (identity, zones, stack), asked once whichever check needs them first; one
    # lock per answer, so different answers are fetched in parallel.
    def _once(self, key: str, compute: Callable[[], Any]) -> Any:
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._memo:
                try:
                    self._memo[key] = (compute(), None)
                except (BotoCoreError, ClientError, Fail) as exc:
                    self._memo[key] = (None, exc)
            value, error = self._memo[key]
        if error is not None:
            raise error
        return value

    def identity(self) -> dict[str, Any]:
        if self.session_error is not None:
            raise self.session_error
        return dict(self._once("identity", lambda: self.clients["sts"].get_caller_identity()))

    def aws(self, service: str) -> Any:
        """A regional client, once credentials and region are known good."""
        self.ready()
        return self.clients[service]

    def ready(self) -> str:
        """The region, once it and the credentials are known good; else Skip."""
        if self.region is None:
            raise Skip("needs a region (see the region line)")
        try:
            self.identity()
        except (BotoCoreError, ClientError) as exc:
            raise Skip("needs working credentials (see the credentials line)") from exc
        return self.region

    def zones(self) -> list[tuple[str, str]]:
        """(name, zone ID) of the zones the stack will use, in the order the VPC takes them."""
        return list(self._once("zones", self._zones)[0])

    def _zones(self) -> tuple[list[tuple[str, str]], dict[str, str]]:
        """The chosen zones, and every zone this account is offered in the region (name -> ID)."""
        ec2 = self.clients["ec2"]
        offered = [
            z
            for z in ec2.describe_availability_zones()["AvailabilityZones"]
            if z.get("ZoneType", "availability-zone") == "availability-zone"
        ]
        ids = {z["ZoneName"]: z["ZoneId"] for z in offered}
        if self.config.availability_zones:
            missing = [n for n in self.config.availability_zones if n not in ids]
            if missing:
                raise Fail(
                    f"availabilityZones {', '.join(missing)} not offered to this account in {self.region} "
                    f"(its zones: {', '.join(sorted(ids))})"
                )
            names = list(self.config.availability_zones)
        else:
            # Fn::GetAZs: the zones with a default subnet, or all when none has one; alphabetical
            # (CloudFormation "Fn::GetAZs"; it adds that the order is not guaranteed).
            subnets = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
            with_default = {s["AvailabilityZone"] for s in subnets} & set(ids)
            names = sorted(with_default or ids)[:2]
        return [(n, ids[n]) for n in names], ids

    def zone_choice(self) -> tuple[list[tuple[str, str]], dict[str, str]]:
        """The chosen zones, and every zone offered (name -> ID), asked once."""
        chosen, offered = self._once("zones", self._zones)
        return list(chosen), dict(offered)

    def stack(self) -> str | None:
        """The stack's status, or None when there is none."""

        def compute() -> str | None:
            try:
                stacks = self.clients["cloudformation"].describe_stacks(StackName=STACK_NAME)["Stacks"]
            except ClientError as exc:
                if "does not exist" in exc.response.get("Error", {}).get("Message", ""):
                    return None
                raise
            return str(stacks[0]["StackStatus"])

        return self._once("stack", compute)  # type: ignore[no-any-return]

    def checker_regions(self) -> str:
        regions = self.config.checker_regions
        return f"checkerRegions={json.dumps(list(regions), separators=(',', ':'))}" if regions else "one region"

    def quota(self, quota: Quota) -> float:
        sq = self.clients["service-quotas"]
        try:
            return float(
                sq.get_service_quota(ServiceCode=quota.service_code, QuotaCode=quota.quota_code)["Quota"]["Value"]
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchResourceException":
                raise
        # No value applied to this account: the AWS default holds.
        return float(
            sq.get_aws_default_service_quota(ServiceCode=quota.service_code, QuotaCode=quota.quota_code)["Quota"][
                "Value"
            ]
        )

    def adds(self, count: int) -> tuple[int, str]:
        """What the deploy adds: nothing when the stack exists (its own are counted in use)."""
        try:
            status = self.stack()
        except (BotoCoreError, ClientError):
            status = None
        # A stack with nothing in it yet (a change set never run) or one the CLI re-creates adds all.
        exists = status is not None and status != "REVIEW_IN_PROGRESS" and status not in CREATION_FAILURES
        return (0, "an update adds none") if exists else (count, f"the stack adds {count}")

    def compare(self, quota: Quota, used: int, count: int, where: str = "") -> str:
        try:
            limit = self.quota(quota)
        except (BotoCoreError, ClientError) as exc:
            raise Warn(f"{used} in use{where}; could not read the quota ({explain(exc)})") from exc
        added, how = self.adds(count)
        text = f"{used} of {limit:g} in use{where}, {how} ({quota.service_code} {quota.quota_code})"
        if used + added > limit:
            raise Fail(f"{text}: free some, or request an increase of '{quota.label}' in Service Quotas")
        return text
