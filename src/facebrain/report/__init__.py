"""The self-contained HTML report and the machine-readable ``results.nc``."""

from .._lazy import attach
from ._build import ReportData, build_report, write_report
from ._results import read_results, write_results

_INTERNAL = "it is internal (import it from {} if you must)"

__getattr__ = attach(__name__, {}, deprecated={
    name: (mod, name, _INTERNAL.format(f"facebrain.report{mod}"))
    for mod, names in {
        "._build": ["collect_run", "package_versions"],
        "._figures": ["rdm_matrix", "voxel_image"],
        "._html": ["HtmlReport", "figure_to_base64"],
        "._results": ["clean_attrs", "write_netcdf"],
    }.items() for name in names
})[0]

__all__ = [
    "ReportData",
    "build_report",
    "read_results",
    "write_report",
    "write_results",
]
