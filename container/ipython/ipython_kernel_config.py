# Every notebook kernel in the image starts with the remote-training client at hand,
# as in the original image: run_script_job(...) needs no import.
c = get_config()  # noqa: F821
c.InteractiveShellApp.exec_lines = ["from gxnb.remote import run_script_job, submit_script_job"]
