"""HTTP faces of the engine: the SageMaker JSON 1.1 control plane and the CloudWatch Logs subset."""
