"""Device catalog: microcontroller boards as data (``catalog.yaml``) and the ``Device`` type."""

from tinyopt.devices._catalog import (
    CATALOG_PATH,
    Device,
    Runtime,
    code_size_table,
    core_table,
    custom_device,
    get_device,
    get_runtime,
    list_devices,
    list_runtimes,
)

__all__ = ["CATALOG_PATH", "Device", "Runtime", "code_size_table", "core_table", "custom_device",
           "get_device", "get_runtime", "list_devices", "list_runtimes"]
