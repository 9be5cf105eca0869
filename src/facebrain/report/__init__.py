"""The self-contained HTML report and the machine-readable ``results.nc``.

The report reads a run folder through the neutral :mod:`facebrain._runfolder`
(it never imports the pipeline); ``read_results`` / ``write_results`` /
``write_netcdf`` / ``clean_attrs`` are that module's netCDF helpers.
"""

from .._runfolder import clean_attrs, read_results, write_netcdf, write_results
from ._build import ReportData, build_report, collect_run, package_versions, write_report
from ._figures import rdm_matrix, voxel_image
from ._html import HtmlReport, figure_to_base64

__all__ = [
    "HtmlReport",
    "ReportData",
    "build_report",
    "clean_attrs",
    "collect_run",
    "figure_to_base64",
    "package_versions",
    "rdm_matrix",
    "read_results",
    "voxel_image",
    "write_netcdf",
    "write_report",
    "write_results",
]
