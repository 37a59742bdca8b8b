"""Devices: the protocol, local (this machine), android (adb), configs, tuning and restore."""
