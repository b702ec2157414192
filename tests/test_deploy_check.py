"""make deploy's fill (tools/deploy_check.py --fill): the deployer's address and IAM principal
added to apiCidrs and adminPrincipals at deploy time, against a local checkip server and STS
in a moto server; nothing reaches AWS or the internet."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cdk_app.config import ConfigError
from tests.conftest import ROOT
from tests.peers import CHECKIP_ADDRESS, closed_port_url, http_peer
from tools.deploy_check import my_principals


def run_fill(*args: str, checkip: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.deploy_check", "--fill", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**__import__("os").environ, "CHECKIP_URL": checkip},
    )


def options(stdout: str) -> dict[str, list[str]]:
    lines = stdout.splitlines()
    assert lines[0::2] == ["-c", "-c"], stdout
    return {k: json.loads(v) for k, v in (line.split("=", 1) for line in lines[1::2])}


def test_me_is_this_machines_address_and_the_callers_principal_added_to_the_configured(aws_env: str) -> None:
    with http_peer("checkip") as url:
        done = run_fill("-c", 'apiCidrs=["198.51.100.0/24"]', checkip=url)
    assert done.returncode == 0, done.stderr
    filled = options(done.stdout)
    assert filled["apiCidrs"] == ["198.51.100.0/24", f"{CHECKIP_ADDRESS}/32"]
    [me] = filled["adminPrincipals"]
    assert me.startswith("arn:aws:iam::123456789012:user/")  # moto's caller
    # Shown to the deployer, one line each.
    assert f"public for 198.51.100.0/24, {CHECKIP_ADDRESS}/32, and private" in done.stderr
    assert f"kubectl as cluster admin (AdminRole): {me}" in done.stderr


def test_empty_variables_add_nothing_and_the_endpoint_stays_private(aws_env: str) -> None:
    done = run_fill("--api-cidrs", "", "--admin-principals", "", checkip=closed_port_url())
    assert done.returncode == 0, done.stderr
    assert options(done.stdout) == {"apiCidrs": [], "adminPrincipals": []}
    assert "private only" in done.stderr and "no one (no AdminRole" in done.stderr


def test_an_endpoint_explicitly_open_to_all_is_left_alone(aws_env: str) -> None:
    done = run_fill("-c", 'apiCidrs=["0.0.0.0/0"]', "--admin-principals", "", checkip=closed_port_url())
    assert done.returncode == 0, done.stderr
    assert options(done.stdout)["apiCidrs"] == ["0.0.0.0/0"]
    assert "public for the whole internet" in done.stderr


@pytest.mark.parametrize("peer", ["wrong_body", None])
def test_no_address_from_checkip_is_one_line_naming_API_CIDRS(aws_env: str, peer: str | None) -> None:
    if peer is None:
        done = run_fill(checkip=closed_port_url())
    else:
        with http_peer(peer) as url:
            done = run_fill(checkip=url)
    assert done.returncode == 2 and done.stdout == ""
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: API_CIDRS: 'me' needs this machine's public address") and "API_CIDRS=" in line


def test_a_bad_cidr_in_API_CIDRS_is_refused_as_synth_would(aws_env: str) -> None:
    done = run_fill("--api-cidrs", "10.0.0.1/8", "--admin-principals", "", checkip=closed_port_url())
    assert done.returncode == 2
    assert "error: context key 'apiCidrs'='10.0.0.1/8' is invalid" in done.stderr


def test_an_assumed_role_is_named_with_and_without_a_path() -> None:
    sso = "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Admin_0123/jane@example.com"
    assert my_principals(sso) == [
        "arn:aws:iam::123456789012:role/AWSReservedSSO_Admin_0123",
        "arn:aws:iam::123456789012:role/*/AWSReservedSSO_Admin_0123",
    ]
    assert my_principals("arn:aws:iam::123456789012:user/ops/jane") == ["arn:aws:iam::123456789012:user/ops/jane"]
    with pytest.raises(ConfigError, match="^ADMIN_PRINCIPALS: 'me' is arn:aws:iam::123456789012:root, which cannot"):
        my_principals("arn:aws:iam::123456789012:root")  # the root user cannot assume a role
