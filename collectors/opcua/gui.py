"""The plant engineer's desktop OPC UA browser: FreeOpcUa's opcua-client opened with the collector's session.

The window is upstream's (`uaclient.mainwindow.Window`); only its Connect is ours. It opens the session with
`open_session`, the collector's own code, so the engineer sees what the collector will see: the same client
certificate made under the data folder, the same pinned (or configured) server certificate, the same security
policy, mode and login. The connection dialogs that would change those are switched off, and the address is fixed.

Qt and opcua-client come with the optional extra `energy-gateway[gui]`; they are imported only when a window
is opened, so nothing else of the gateway loads them.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from asyncua.sync import Client as SyncClient
from asyncua.sync import Shortcuts

from collectors.base import CollectorError
from collectors.opcua.browse import browse_nodes
from collectors.opcua.config import OpcUaEndpointConfig
from collectors.opcua.security import open_session

log = logging.getLogger(__name__)

INSTALL = "pip install 'energy-gateway[gui]'"
# What the extra brings; each is imported once here to tell "not installed" from "installed but broken".
_MODULES = ("PyQt5.QtWidgets", "uawidgets.tree_widget", "uaclient.uaclient")

# The window's own words: English, or Chinese when the desktop's locale is Chinese.
_TEXT = {
    "en": {"title": "energy-gateway: {name} at {url} ({security}, {who})",
           "fixed": "Security and login are the gateway's settings for this device (gateway.toml or the command's "
                    "options); they cannot be changed here.",
           "none": "no security", "anonymous": "anonymous", "user": "user {0!r}", "cert": "certificate {0}"},
    "zh": {"title": "energy-gateway：设备 {name}，{url}（{security}，{who}）",
           "fixed": "安全与登录使用网关对此设备的设置（gateway.toml 或命令行选项），此处不可更改。",
           "none": "无安全策略", "anonymous": "匿名", "user": "用户 {0!r}", "cert": "证书 {0}"},
}


class GuiUnavailable(CollectorError):
    """The desktop browser cannot start here: the extra is not installed or cannot load, or there is no display."""


def require_gui() -> None:
    """Raise GuiUnavailable, saying what to install, unless Qt 5 and opcua-client can be imported."""
    for name in _MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            raise GuiUnavailable(f"the desktop browser is not installed (no module {exc.name!r}): {INSTALL}") from None
        except ImportError as exc:  # installed, but a system library is missing (libGL, libxcb-*, ...)
            raise GuiUnavailable(f"the desktop browser cannot load: {exc}") from None


def require_display(environ: Mapping[str, str]) -> None:
    """On Linux, a window needs an X or Wayland display (or a Qt platform chosen on purpose)."""
    if sys.platform.startswith("linux") and not any(
            environ.get(k) for k in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")):
        raise GuiUnavailable("no display to open the window on (DISPLAY is not set): run it in a desktop "
                             "session or over ssh -X")


async def check_endpoint(endpoint: OpcUaEndpointConfig, state_dir: Path,
                         environ: Mapping[str, str] | None = None) -> None:
    """Open and close one session as the collector would, before any window is shown.

    It makes the client certificate, pins or checks the server certificate and tries the login; a BrowseError
    says in one line what failed.
    """
    await browse_nodes(endpoint, depth=1, limit=1, state_dir=state_dir, environ=environ)


class _GatewaySession:
    """The window's Connect: the collector's session under the sync wrapper the widgets use."""

    def __init__(self, ua_client: Any, endpoint: OpcUaEndpointConfig, state_dir: Path,
                 environ: Mapping[str, str]) -> None:
        self.ua_client, self.endpoint, self.state_dir, self.environ = ua_client, endpoint, state_dir, environ

    def connect(self, uri: str) -> None:
        """Connect to the endpoint (the address box holds only its URL, so `uri` is that URL)."""
        self.ua_client.disconnect()
        sync = SyncClient(self.endpoint.url, timeout=self.endpoint.timeout_s)  # runs its own loop thread
        opening = asyncio.wait_for(open_session(self.endpoint, self.state_dir, self.environ),
                                   self.endpoint.timeout_s * 3)
        try:
            session = sync.tloop.post(opening)
        except BaseException:
            sync.tloop.stop()
            raise
        # The sync wrapper drives whichever async client it holds: give it the one open_session made.
        sync.aio_obj, sync.nodes = session, Shortcuts(sync.tloop, session.uaclient)
        self.ua_client.client = sync
        self.ua_client._connected = True  # what upstream's disconnect looks at
        try:
            sync.load_data_type_definitions()  # custom structures shown decoded, as upstream's Connect does
        except Exception:  # noqa: BLE001 - a server whose type dictionary is odd can still be browsed
            log.warning("%s: the server's data type definitions could not be loaded", self.endpoint.url,
                        exc_info=True)


def _words(endpoint: OpcUaEndpointConfig, language: str) -> dict[str, str]:
    text = _TEXT[language]
    security = text["none"] if endpoint.security_policy == "None" else \
        f"{endpoint.security_policy}/{endpoint.security_mode}"
    if endpoint.username is not None:
        who = text["user"].format(endpoint.username)
    elif endpoint.user_certificate is not None:
        who = text["cert"].format(endpoint.user_certificate.name)
    else:
        who = text["anonymous"]
    return {"title": text["title"].format(name=endpoint.name, url=endpoint.url, security=security, who=who),
            "fixed": text["fixed"]}


def open_window(endpoint: OpcUaEndpointConfig, state_dir: Path, environ: Mapping[str, str] | None = None) -> int:
    """Show the browser connected to `endpoint` until it is closed (or Ctrl+C); the Qt exit code."""
    from PyQt5.QtCore import QLocale, Qt, QTimer
    from PyQt5.QtWidgets import QApplication
    from uaclient.mainwindow import Window
    from uawidgets.logger import QtHandler

    # An application made by the caller is used as it is: Qt allows one per process.
    app = QApplication.instance() or QApplication([sys.argv[0]])
    window = Window()
    words = _words(endpoint, "zh" if QLocale.system().name().startswith("zh") else "en")
    window.setWindowTitle(words["title"])
    session = _GatewaySession(window.uaclient, endpoint, state_dir, os.environ if environ is None else environ)
    window.uaclient.connect = session.connect
    address = window.ui.addrComboBox
    address.clear()
    address.addItem(endpoint.url)
    address.setEditable(False)
    for control in (window.ui.connectOptionButton, window.ui.actionClient_Application_Certificate):
        control.setEnabled(False)
        control.setToolTip(words["fixed"])
    log_pane = QtHandler(window.ui.logTextEdit)
    logging.getLogger().addHandler(log_pane)

    def connect() -> None:
        window.connect()  # upstream's slot: a failure is logged and shown in the status bar
        if window.uaclient.client is None:
            return
        model = window.tree_ui.model
        found = model.match(model.index(0, 0), Qt.ItemDataRole.DisplayRole, "Objects", 1,
                            Qt.MatchFlag.MatchExactly | Qt.MatchFlag.MatchRecursive)
        if found:  # the server's own nodes at a glance
            window.ui.treeView.setExpanded(found[0], True)

    # Ctrl+C in the terminal closes the window; the timer lets Python run its signal handler now and then.
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, lambda *_: window.close()) if main_thread else None
    wake = QTimer()
    wake.timeout.connect(lambda: None)
    wake.start(250)
    window.show()
    QTimer.singleShot(0, connect)
    try:
        return int(app.exec_())
    finally:
        wake.stop()
        if main_thread:
            signal.signal(signal.SIGINT, signal.SIG_DFL if previous is None else previous)
        logging.getLogger().removeHandler(log_pane)
