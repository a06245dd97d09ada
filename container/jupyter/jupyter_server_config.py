# Jupyter Server's settings of the image (beside jupyter_server_config.d/).
# A Galaxy session (GXNB_SESSION_AUTH=route, set by start-notebook.sh) answers only through its
# own route: gxnb.session_auth reads the route from the session's secrets folder.
import os

if os.environ.get("GXNB_SESSION_AUTH") == "route":
    from gxnb import session_auth

    session_auth.configure(c)  # noqa: F821 (c: the config object Jupyter passes to this file)
