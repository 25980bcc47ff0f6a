# Imports Cython and numpy while it is built, as pycocotools did: it builds only where the
# requirements.txt of the line before has been installed.
import Cython
import numpy
from setuptools import setup

with open("cocolike_built.py", "w") as out:
    out.write(f"CYTHON = {Cython.__version__!r}\nNUMPY = {numpy.__version__!r}\n")

setup(name="cocolike", version="1.0", py_modules=["cocolike_built"])
