#!/usr/bin/env python3
"""CDK entry point: read configuration once, build the stacks, synthesize. No AWS calls."""

import sys

import aws_cdk as cdk

from cdk_app.config import ConfigError
from cdk_app.stack import build


def main() -> None:
    app = cdk.App()
    try:
        build(app)
    except ConfigError as exc:
        sys.exit(f"error: {exc}")
    app.synth()


if __name__ == "__main__":
    main()
