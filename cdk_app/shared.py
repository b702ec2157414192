"""What the cluster stack hands the other stacks, as SSM parameters under fixed names.

Not CloudFormation exports, nor aws-cdk-lib's cross-region references: an export cannot change
or go while another stack imports it (so a domain turned on or off, or a replaced load balancer,
failed the cluster stack's update), and aws-cdk-lib 2.275's cross-region writer never rewrites a
name it already wrote (so a replaced load balancer left remote checkers probing the old one).
Here the writer is the cluster stack, in every region that reads, and an update rewrites the
value; a reader declares an `AWS::SSM::Parameter::Value<String>` template parameter, which
CloudFormation resolves at each deploy of the reading stack, and the CDK CLI never skips a
stack that has one (docs/decisions.md §8).
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_ssm as ssm
from aws_cdk import custom_resources as cr
from constructs import Construct

from cdk_app import nag


def read(scope: Construct, name: str) -> str:
    """The parameter's value, resolved by CloudFormation when the reading stack deploys."""
    return ssm.StringParameter.value_for_string_parameter(scope, name)


def _label(name: str) -> str:
    """A construct id from a parameter name: /HelloWorldEks/load-balancer-full-name -> LoadBalancerFullName
    (the stack's name left out: every parameter starts with it)."""
    parts = name.strip("/").split("/")
    return "".join(w.capitalize() for part in parts[1:] if part for w in part.split("-"))


class SharedValues(Construct):
    """Writes `values` (parameter name -> value) in the stack's own region, and copies of some of
    them into other regions (where the other checkers read): `remote` is region -> {name written
    there: the name here whose value it copies}."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        values: Mapping[str, str],
        remote: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        super().__init__(scope, id)
        self.parameters = {
            name: ssm.StringParameter(self, _label(name), parameter_name=name, string_value=value)
            for name, value in values.items()
        }
        self.remote: dict[tuple[str, str], cr.AwsCustomResource] = {}
        stack = Stack.of(self)
        for region, copies in (remote or {}).items():
            for name, source in copies.items():
                self.remote[(region, name)] = self._remote(stack, region, name, values[source], label=_label(source))
        if self.remote:
            nag.acknowledge_aws_custom_resource_provider(stack)

    def _remote(self, stack: Stack, region: str, name: str, value: str, *, label: str) -> cr.AwsCustomResource:
        arn = stack.format_arn(service="ssm", region=region, resource="parameter", resource_name=name.lstrip("/"))
        # The value is a property of the resource: when it changes (a replaced load balancer),
        # CloudFormation sends an update, and the update overwrites the parameter.
        put = cr.AwsSdkCall(
            service="SSM",
            action="putParameter",
            parameters={"Name": name, "Value": value, "Type": "String", "Overwrite": True},
            region=region,
            physical_resource_id=cr.PhysicalResourceId.of(f"{region}:{name}"),
        )
        resource = cr.AwsCustomResource(
            self,
            # UrlEuWest1, from the home name: a new logical id would delete the live parameter
            # (the old resource's Delete runs after the new one's Put, on the same name).
            label + "".join(w.capitalize() for w in region.split("-")),
            resource_type="Custom::RemoteParameter",
            on_create=put,
            on_update=put,
            on_delete=cr.AwsSdkCall(
                service="SSM",
                action="deleteParameter",
                parameters={"Name": name},
                region=region,
                ignore_error_codes_matching="ParameterNotFound",
            ),
            policy=cr.AwsCustomResourcePolicy.from_statements(
                [iam.PolicyStatement(actions=["ssm:PutParameter", "ssm:DeleteParameter"], resources=[arn])]
            ),
            install_latest_aws_sdk=False,
        )
        return resource
