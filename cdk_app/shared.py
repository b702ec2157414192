"""What the cluster stack hands the other stacks, under the fixed names of `config.SHARED`.

- The URL: an SSM parameter (`/HelloWorldEks/url`) written in the home region only. No stack
  reads it at deploy: every checker Lambda, home and remote, names it in its target and reads it
  with ssm:GetParameter at the start of each invocation (checker_lambda/urls.py), its role
  allowed exactly that parameter's ARN. So a new URL reaches every checker at its next
  invocation, with no deploy of theirs, and no deploy depends on which credentials CloudFormation
  would use to resolve an `AWS::SSM::Parameter::Value<...>` template parameter (AWS does not say;
  docs/decisions.md §8).
- The load balancer's and target group's full names, the dimensions of the health stack's ALB
  alarms: CloudFormation exports under pinned names, imported with Fn::ImportValue (no SSM
  permission involved under any reading). They change only when the load balancer or target
  group is replaced; CloudFormation then refuses the cluster stack's update while the health
  stack imports them (docs/stacks.md, "How the stacks hand values on": the two-step way out).
"""

from __future__ import annotations

from typing import cast

from aws_cdk import Aws, CfnOutput, Stack
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from cdk_app.config import SHARED

# The URL parameter's logical id in the release before (construct path Shared/Url). Pinned: a new
# id makes CloudFormation create the new resource first, which SSM refuses (the name exists), and
# would then delete the live parameter with the old one (tests/test_stacks.py).
URL_PARAMETER_LOGICAL_ID = "SharedUrl6B3DA5D5"


def write_url(scope: Construct, url: str, *, after: Construct) -> ssm.StringParameter:
    """The listener's URL, in the cluster stack's own (the home) region, written only once `after`
    (the listeners, the certificate, the DNS record, the target group binding applied) is in
    place: every checker probes the new URL from its next run, so a URL written before its
    endpoint exists would be an outage seen from every location."""
    parameter = ssm.StringParameter(scope, "SharedUrl", parameter_name=SHARED.url, string_value=url)
    cast(ssm.CfnParameter, parameter.node.default_child).override_logical_id(URL_PARAMETER_LOGICAL_ID)
    parameter.node.add_dependency(after)
    return parameter


def export(scope: Construct, id: str, *, value: str, name: str, description: str) -> CfnOutput:
    output = CfnOutput(scope, id, value=value, export_name=name, description=description)
    output.override_logical_id(id)
    return output


def url_region(home_region: str | None) -> str:
    """The region of the URL parameter: the home region, or, unpinned (one region, env-agnostic
    stacks), the region the stack deploys to, which is then the home one."""
    return home_region or Aws.REGION


def url_parameter_arn(scope: Construct, home_region: str | None) -> str:
    return Stack.of(scope).format_arn(
        service="ssm", region=url_region(home_region), resource="parameter", resource_name=SHARED.url.lstrip("/")
    )
