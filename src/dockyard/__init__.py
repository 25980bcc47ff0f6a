"""dockyard: SageMaker-style training jobs, endpoints and batch transform on your own machines."""

__version__ = "0.1.0"
