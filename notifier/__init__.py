"""The notifier: a Lambda subscribed to the alert topic that turns each alarm notification into
one message per destination (Slack, Teams, Discord, Google Chat, PagerDuty, Opsgenie, a signed
webhook), reading each destination's URL or key at run time from Secrets Manager or SSM.

contract.py is what the infrastructure and the runtime share (channel types, secret names,
verdicts, environment, metric); alarm.py reads the SNS message; page.py decides what to say;
channels.py says it in each product's format; deliver.py sends it with one retry policy.
"""
