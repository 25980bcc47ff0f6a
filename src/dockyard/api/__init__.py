"""HTTP faces of the engine: SageMaker control plane, runtime (InvokeEndpoint), Logs subset."""
