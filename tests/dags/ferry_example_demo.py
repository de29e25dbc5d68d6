"""Loads examples/dags/ferry_demo.py into the tests' DAG folder, so dag.test() runs the very
DAG users copy (its settings come from FERRY_DEMO_* variables the test sets).

(Airflow's DagBag only parses files that mention both "airflow" and "dag": this line does.)
"""

from __future__ import annotations

import importlib.util
import os

_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "dags", "ferry_demo.py")
_spec = importlib.util.spec_from_file_location("ferry_demo_example", _PATH)
assert _spec is not None and _spec.loader is not None
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)
demo_dag = _module.ferry_demo()
