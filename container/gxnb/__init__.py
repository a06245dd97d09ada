"""The Galaxy GPU notebook service's code shipped in the notebook image.

gxnb.remote  run_script_job / submit_script_job: send a training to Galaxy (in every kernel)
gxnb.accelerator  which GPU the session has (start log line, status bar item via a server extension)
gxnb.runner  what the run_jupyter_job tool runs (a script, its H5 inputs, ONNX export)
"""
