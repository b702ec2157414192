#!/usr/bin/env python3
"""CDK entry point: read configuration once, build the stack, synthesize. No AWS calls."""

import sys

import aws_cdk as cdk

from cdk_app.config import AppConfig, ConfigError
from cdk_app.stack import HelloStack


def main() -> None:
    app = cdk.App()
    try:
        config = AppConfig.from_context(app.node.try_get_context)
    except ConfigError as exc:
        sys.exit(f"error: {exc}")
    HelloStack(app, "HelloWorldEks", config=config, description="Hello World service on EKS with health checks")
    app.synth()


if __name__ == "__main__":
    main()
