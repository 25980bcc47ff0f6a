"""The SageMaker contract as pure data and rules: no I/O beyond writing the /opt/ml config files."""
