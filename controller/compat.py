"""One place that knows which Ryu-API framework is installed: os-ken (maintained) or classic Ryu.

The application is written to the Ryu API; only the package name differs. Everything the app imports from
the framework comes through here.
"""

from __future__ import annotations

from typing import Any

try:
    from os_ken import cfg
    from os_ken.base import app_manager
    from os_ken.controller import event, ofp_event
    from os_ken.controller.handler import CONFIG_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
    from os_ken.lib import hub
    from os_ken.ofproto import ofproto_v1_3

    FRAMEWORK = "os_ken"
except ImportError:  # classic Ryu, where it still installs
    from ryu import cfg  # type: ignore[no-redef]
    from ryu.base import app_manager  # type: ignore[no-redef]
    from ryu.controller import event, ofp_event  # type: ignore[no-redef]
    from ryu.controller.handler import CONFIG_DISPATCHER, MAIN_DISPATCHER, set_ev_cls  # type: ignore[no-redef]
    from ryu.lib import hub  # type: ignore[no-redef]
    from ryu.ofproto import ofproto_v1_3  # type: ignore[no-redef]

    FRAMEWORK = "ryu"

BaseApp: Any = app_manager.RyuApp if FRAMEWORK == "ryu" else app_manager.OSKenApp


def run(app_module: str, listen_host: str, listen_port: int) -> None:
    """Start the framework's OpenFlow listener with ``app_module`` (what osken-manager used to do)."""
    cfg.CONF(args=["--ofp-listen-host", listen_host, "--ofp-tcp-listen-port", str(listen_port)],
             project=FRAMEWORK)
    app_manager.AppManager.run_apps([app_module])


__all__ = ["CONFIG_DISPATCHER", "FRAMEWORK", "MAIN_DISPATCHER", "BaseApp", "event", "hub", "ofp_event",
           "ofproto_v1_3", "run", "set_ev_cls"]
