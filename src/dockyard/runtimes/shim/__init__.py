"""The in-environment shim: `dockyard_shim.py` is copied into every framework environment's
site-packages, with a `dockyard_shim.pth` that imports it when the interpreter starts.

It runs inside the sandbox, in the environment's interpreter, where dockyard is not installed: it
imports only the standard library and the SageMaker toolkit. Nothing in dockyard imports it."""
