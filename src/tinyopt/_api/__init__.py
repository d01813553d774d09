"""The Python facade's implementation; the public names are re-exported by ``tinyopt/__init__.py``."""

from tinyopt._api.measure import CheckReport, DeviceTable, Report, analyze, check, devices
from tinyopt._api.model import Model, load
from tinyopt._api.run import Deployment, deploy, infer
from tinyopt._api.search import Selection, TuneReport, select, tune
from tinyopt._api.transform import Compressed, compress, convert

__all__ = ["CheckReport", "Compressed", "Deployment", "DeviceTable", "Model", "Report", "Selection",
           "TuneReport", "analyze", "check", "compress", "convert", "deploy", "devices", "infer", "load",
           "select", "tune"]
