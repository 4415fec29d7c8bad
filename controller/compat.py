"""One place that knows which Ryu-API framework is installed: os-ken (maintained) or classic Ryu.

The application is written to the Ryu API; only the package name differs. Everything the app imports from
the framework comes through here.
"""

from __future__ import annotations

import functools
from typing import Any

try:
    from os_ken import cfg
    from os_ken.base import app_manager
    from os_ken.controller import event, ofp_event
    from os_ken.controller.handler import CONFIG_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
    from os_ken.lib import hub
    from os_ken.ofproto import nicira_ext, ofproto_v1_3

    FRAMEWORK = "os_ken"
except ImportError:  # classic Ryu, where it still installs
    from ryu import cfg  # type: ignore[no-redef]
    from ryu.base import app_manager  # type: ignore[no-redef]
    from ryu.controller import event, ofp_event  # type: ignore[no-redef]
    from ryu.controller.handler import CONFIG_DISPATCHER, MAIN_DISPATCHER, set_ev_cls  # type: ignore[no-redef]
    from ryu.lib import hub  # type: ignore[no-redef]
    from ryu.ofproto import nicira_ext, ofproto_v1_3  # type: ignore[no-redef]

    FRAMEWORK = "ryu"

BaseApp: Any = app_manager.RyuApp if FRAMEWORK == "ryu" else app_manager.OSKenApp


def masked_set_field(parser: Any, field: str, value: str, mask: str) -> Any:
    """Open vSwitch's masked set-field for OpenFlow 1.3 (NXAST_REG_LOAD2; ``set_field:value/mask->field``)."""
    return _reg_load2(parser)(dst=field, value=value, mask=mask)


def conntrack(parser: Any, zone: int, mark: int | None = None, table: int | None = None) -> Any:
    """Open vSwitch's ct action (NXAST_CT) in an immediate ``zone``: ``ct(commit,zone=Z,exec(set_field:M->ct_mark))``
    with ``mark``, or ``ct(zone=Z,table=T)`` with ``table``."""
    return parser.NXActionCT(flags=nicira_ext.NX_CT_F_COMMIT if mark is not None else 0,
                             zone_src="", zone_ofs_nbits=zone,  # no source field: the offset holds the zone
                             recirc_table=nicira_ext.NX_CT_RECIRC_NONE if table is None else table, alg=0,
                             actions=[] if mark is None else [parser.OFPActionSetField(ct_mark=mark)])


@functools.cache
def _reg_load2(parser: Any) -> Any:
    """The framework's NXActionRegLoad2 pads its OXM as if it never exceeded 14 bytes: an IPv6 value with its
    mask is 36, and the action would go out shorter than the length it declares. Both frameworks share that
    code, so the padding is mended here (the action's 10-byte header plus the OXM, rounded up to 8 bytes),
    in one class per parser module: every push of prefix rules encodes with it."""

    class RegLoad2(parser.NXActionRegLoad2):  # type: ignore[misc, name-defined]
        def serialize_body(self) -> bytearray:
            data = bytearray()
            n, v, m = ofproto_v1_3.oxm_from_user(self.dst, (self.value, self.mask))
            length = ofproto_v1_3.oxm_serialize(n, v, m, data, 0)
            return data + bytes(-(10 + length) % 8)

    return RegLoad2


def run(app_module: str, listen_host: str, listen_port: int) -> None:
    """Start the framework's OpenFlow listener with ``app_module`` (what osken-manager used to do)."""
    cfg.CONF(args=["--ofp-listen-host", listen_host, "--ofp-tcp-listen-port", str(listen_port)],
             project=FRAMEWORK)
    app_manager.AppManager.run_apps([app_module])


__all__ = ["CONFIG_DISPATCHER", "FRAMEWORK", "MAIN_DISPATCHER", "BaseApp", "event", "hub", "masked_set_field",
           "ofp_event", "ofproto_v1_3", "run", "set_ev_cls"]
