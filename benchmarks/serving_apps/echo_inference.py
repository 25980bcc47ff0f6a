"""Inference handlers of the benchmark's trivial model: the request body comes back unchanged."""

# The four handler functions, not a transform_fn, so every toolkit runs its usual pipeline.


def model_fn(model_dir):
    return "echo"  # no model to load; not None, so a toolkit cannot mistake it for "not loaded"


def input_fn(input_data, content_type):
    return input_data


def predict_fn(data, model):
    return data


def output_fn(prediction, accept):
    return prediction, "text/csv"
