"""The self-contained HTML report and the machine-readable ``results.nc``.

The report reads a run folder through the neutral :mod:`facebrain._runfolder`
(it never imports the pipeline).
"""

from .._lazy import attach
from .._runfolder import read_results, write_results
from ._build import ReportData, build_report, write_report

_INTERNAL = "it is internal (import it from {} if you must)"

__getattr__ = attach(__name__, {}, deprecated={
    name: (mod, name,
           _INTERNAL.format(mod if mod.startswith("facebrain") else f"facebrain.report{mod}"))
    for mod, names in {
        "._build": ["collect_run", "package_versions"],
        "._figures": ["rdm_matrix", "voxel_image"],
        "._html": ["HtmlReport", "figure_to_base64"],
        "facebrain._runfolder": ["clean_attrs", "write_netcdf"],
    }.items() for name in names
})[0]

__all__ = [
    "ReportData",
    "build_report",
    "read_results",
    "write_report",
    "write_results",
]
