"""The resources and their lifecycles: training jobs, models, endpoints, batch transform."""
