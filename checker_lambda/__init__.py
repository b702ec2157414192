"""Health checker for the Hello World service: runs in AWS Lambda or from a laptop."""
