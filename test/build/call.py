"""
Calls one function of a chart module under python3, for the specs:

    python3 call.py path/to/module.py function '<JSON list of arguments>'

prints {"result": ...} or {"raised": "<class>", "str": "<message>"}. Nothing is written beside the module.
"""
import importlib.util
import json
import sys

sys.dont_write_bytecode = True

path, function, arguments = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
spec = importlib.util.spec_from_file_location('module_under_test', path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
try:
    print(json.dumps({'result': getattr(module, function)(*arguments)}))
except Exception as e:  # the spec asserts on the class and message
    print(json.dumps({'raised': type(e).__name__, 'str': str(e)}))
