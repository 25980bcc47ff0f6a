"""The resources and their lifecycles: training jobs now; models, endpoints and transforms later."""
