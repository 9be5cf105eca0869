"""The report: self-contained HTML, every figure embedded, results.nc round trip."""

from __future__ import annotations

import base64
import re

import numpy as np
import pytest
import xarray as xr
from scipy.spatial.distance import pdist, squareform

from facebrain._runfolder import clean_attrs
from facebrain.errors import ParameterError
from facebrain.report import read_results, write_report, write_results
from facebrain.report._browser import check_in_browser
from facebrain.report._figures import rdm_matrix, voxel_image
from facebrain.report._html import HtmlReport

from . import _fakes


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    rng = np.random.default_rng(7)
    data = _fakes.report_data(rng)
    out = tmp_path_factory.mktemp("report")
    summary = write_report(data, out)
    return data, out, summary


def test_html_is_self_contained_with_every_figure(written):
    _, out, summary = written
    text = (out / "report.html").read_text()
    imgs = re.findall(r"<img [^>]*>", text)
    # contact sheet, training, 2 transfer + 3 confusions, disentanglement, RDMs, RSA,
    # encoding, glass brain
    assert len(imgs) == summary["n_figures"] == 12
    for tag in imgs:
        alt = re.search(r'alt="([^"]*)"', tag).group(1)
        assert len(alt) > 10
        src = re.search(r'src="([^"]*)"', tag).group(1)
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", text.replace("\\", ""))
    assert "<script" not in text and "<link" not in text
    for anchor in ("stimuli", "training", "transfer", "disentanglement", "brain", "provenance"):
        assert f'<section id="{anchor}">' in text
    assert "scikit-learn" in text and "seed: 0" in text  # provenance


def test_recovery_table_marks_planted_drivers(written):
    _, out, summary = written
    assert summary["recovered"]["rFFA"] == [True, True]
    assert summary["recovered"]["EVC"] == [True, True]
    # planted driver absent from the candidates: reported as not recovered
    assert summary["recovered"]["rpSTS"] == [False, False]
    text = (out / "report.html").read_text()
    assert '<td class="ok">yes</td>' in text and '<td class="bad">no</td>' in text


def test_best_layer_and_transfer_summary(written):
    _, _, summary = written
    assert summary["transfer/expression/idnet"]["best_layer"] == "layer4"
    assert summary["transfer/expression/untrained"]["best_layer"] == "layer1"
    assert summary["transfer/identity/exnet"]["best_layer"] == "layer3"


def test_results_nc_holds_every_result_dataset(written):
    data, out, summary = written
    groups = read_results(out / "results.nc")
    assert sorted(groups) == summary["groups"]
    assert "transfer/expression/idnet" in groups and "brain/responses" in groups
    orig = data.transfer[("expression", "idnet")]
    got = groups["transfer/expression/idnet"]
    xr.testing.assert_allclose(got, clean_attrs(orig))
    assert got.attrs["target"] == "expression"
    enc = groups["encoding/idnet"]
    np.testing.assert_allclose(enc["r2"].values, data.encoding["idnet"]["r2"].values)
    assert list(enc["roi"].values) == list(data.encoding["idnet"]["roi"].values)
    np.testing.assert_allclose(enc.attrs["alphas"], [1.0, 10.0, 100.0])


def test_clean_attrs_makes_netcdf_friendly_values(tmp_path):
    ds = xr.Dataset({"a": ("x", [1.0, 2.0])}, coords={"x": np.array(["p", "q"], dtype=object)},
                    attrs={"flag": True, "nested": {"k": [1, 2]}, "none": None, "names": ["a"]})
    path = write_results({"g": ds}, tmp_path / "r.nc")
    got = read_results(path)["g"]
    assert got.attrs["flag"] == 1 and got.attrs["none"] == ""
    assert got.attrs["nested"] == '{"k": [1, 2]}'
    assert list(got["x"].values) == ["p", "q"]


def test_rdm_matrix_equals_scipy_correlation_distance(rng):
    x = rng.standard_normal((9, 13))
    np.testing.assert_allclose(rdm_matrix(x), squareform(pdist(x, "correlation")), atol=1e-12)


def test_voxel_image_puts_values_at_their_mm_coordinates(rng):
    # asymmetric steps (2, 3, 4 mm) so swapped axes fail; two voxels share a coordinate
    xyz = np.array([[40.0, -50.0, -20.0], [42.0, -47.0, -16.0], [10.0, -92.0, 4.0],
                    [40.0, -50.0, -20.0]])
    values = np.array([1.0, 2.0, 3.0, 5.0])
    img = voxel_image(values, xyz)
    np.testing.assert_allclose(np.diag(img.affine)[:3], [2.0, 3.0, 4.0])
    inv = np.linalg.inv(img.affine)
    data = img.get_fdata()
    for (x, y, z), v in zip(xyz[1:3], values[1:3]):
        i, j, k = np.rint(inv @ [x, y, z, 1])[:3].astype(int)
        assert data[i, j, k] == v
    i, j, k = np.rint(inv @ [40, -50, -20, 1])[:3].astype(int)
    assert data[i, j, k] == 3.0  # mean of 1 and 5
    assert np.count_nonzero(data) == 3


def test_html_escapes_text():
    rep = HtmlReport("<b>title</b>")
    sec = rep.section("s", "S & T")
    rep.table(sec, ["a"], [["<script>x</script>"]])
    text = rep.render()
    assert "<script>x" not in text and "&lt;script&gt;" in text and "S &amp; T" in text


@pytest.mark.browser
def test_report_renders_in_headless_chromium(written, tmp_path, chromium):
    _, out, summary = written
    shot = tmp_path / "report.png"
    result = check_in_browser(out / "report.html", screenshot=shot)
    assert result["errors"] == [] and result["console"] == []
    assert result["n_images"] == summary["n_figures"]
    assert result["broken"] == []
    assert all(i["complete"] and i["width"] > 50 for i in result["images"])
    assert shot.is_file() and shot.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.browser
def test_browser_check_catches_broken_images_and_errors(tmp_path, chromium):
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>'
                    '<img src="data:image/png;base64,AAAA" alt="broken one">'
                    "<script>undefinedFunction();</script></body></html>")
    result = check_in_browser(page)
    assert result["broken"] == ["broken one"]
    assert any("undefinedFunction" in e for e in result["errors"])


def test_dollar_signs_in_labels_do_not_kill_the_report():
    # a '$' pair is matplotlib mathtext; "$_$" is invalid math and used to abort savefig
    from facebrain.report import _figures as F
    from facebrain.report._html import figure_to_base64

    rng = np.random.default_rng(3)
    data = _fakes.report_data(rng)
    rename = {"layer": [f"l$_${i}" for i in range(1, len(_fakes.LAYERS) + 1)]}
    rsa = {f"net$_${k}": ds.assign_coords(rename) for k, ds in data.rsa.items()}
    enc = {f"enc$^$ {k}": ds.assign_coords(rename) for k, ds in data.encoding.items()}
    figs = [F.fig_rsa_profiles(rsa), F.fig_encoding_profiles(enc),
            F.fig_training({"cost $5 $_$ net": data.training["idnet"]})]
    for fig in figs:
        png = base64.b64decode(figure_to_base64(fig))
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
    rep = HtmlReport("a $_$ title")
    rep.figure(rep.section("s", "S"), F.fig_rsa_profiles(rsa), "RSA of net$_$ layers")
    assert "net$_$" in rep.render()


def test_write_results_one_file_open_equals_group_by_group(tmp_path, rng):
    """The one-pass write (file opened once, values after all definitions) stores what
    writing each group in turn with xarray stores, nested groups and the root included."""
    def ds(k):
        return xr.Dataset({"score": (("layer", "roi"), rng.standard_normal((2, 3)))},
                          coords={"layer": ["a", "b"], "roi": ["x", "y", "z"][: 3]},
                          attrs={"k": k, "names": ["p", "q"]})

    groups = {"rsa/net": ds(1), "rsa/selection": ds(2), "transfer/d/net": ds(3),
              "brain/responses": ds(4)}
    tree = write_results(groups, tmp_path / "tree.nc")
    for group, d in groups.items():  # the reference: one group at a time, then the root
        d.to_netcdf(tmp_path / "ref.nc", group=group, engine="h5netcdf",
                    mode="a" if (tmp_path / "ref.nc").exists() else "w")
    got, ref = read_results(tree), {g: clean_attrs(d) for g, d in groups.items()}
    assert list(got) == sorted(groups)
    for g in groups:
        xr.testing.assert_identical(got[g], xr.load_dataset(tmp_path / "ref.nc", group=g,
                                                           engine="h5netcdf"))
        xr.testing.assert_identical(got[g], ref[g].load())
    # a group inside another group's data (its own dims), in either order
    nested = {"a/b": ds(6).rename(layer="other"), "a": ds(5)}
    back = read_results(write_results(nested, tmp_path / "nested.nc"))
    for g, d in nested.items():
        xr.testing.assert_identical(back[g], clean_attrs(d))
    with xr.open_dataset(tmp_path / "nested.nc", engine="h5netcdf", group="a/b") as b:
        xr.testing.assert_identical(b.load(), clean_attrs(nested["a/b"]))
    # the root holds the index: not a group to write
    with pytest.raises(ParameterError, match=r"group '/' names the file's root"):
        write_results({"/": ds(7)}, tmp_path / "root.nc")
    assert not (tmp_path / "root.nc").exists()


def test_netcdf_files_read_alike_by_both_engines(tmp_path, rng):
    """facebrain writes with netCDF-C; h5netcdf reads the same values, and files written
    by h5netcdf (run folders from before the switch) read back through facebrain alike."""
    from facebrain._runfolder import ENGINE, read_netcdf, write_netcdf

    assert ENGINE == "netcdf4"
    ds = xr.Dataset(
        {"r2": (("layer", "voxel"), rng.standard_normal((3, 40))),
         "alpha": (("layer", "voxel"), 10.0 ** rng.integers(-2, 7, (3, 40))),
         "n": ("layer", np.array([3, 4, 5], np.int64)),
         "ok": ("layer", np.array([True, False, True]))},
        coords={"layer": ["layer1", "layer2", "avgpool"],
                "roi": ("voxel", np.array(["EVC", "rFFA"] * 20)),
                "x": ("voxel", rng.standard_normal(40))},
        attrs={"model": "net", "chance": 1 / 7, "flag": True, "names": ["a", "b"],
               "nested": {"k": [1, 2]}, "none": None})
    ours = write_netcdf(ds, tmp_path / "ours.nc")
    want = clean_attrs(ds)
    xr.testing.assert_identical(xr.load_dataset(ours, engine="h5netcdf"), want)
    xr.testing.assert_identical(read_netcdf(ours), want)
    want.to_netcdf(tmp_path / "old.nc", engine="h5netcdf")
    xr.testing.assert_identical(read_netcdf(tmp_path / "old.nc"), want)
    # results.nc of an older run (h5netcdf, one group at a time) through read_results
    groups = {"rsa/net": ds, "encoding/net": ds.isel(voxel=slice(5))}
    for g, d in groups.items():
        clean_attrs(d).to_netcdf(tmp_path / "old_results.nc", group=g, engine="h5netcdf",
                                 mode="a" if (tmp_path / "old_results.nc").exists() else "w")
    xr.Dataset(attrs={"groups": '{"encoding/net": [], "rsa/net": []}'}).to_netcdf(
        tmp_path / "old_results.nc", mode="a", engine="h5netcdf")
    back = read_results(tmp_path / "old_results.nc")
    assert sorted(back) == sorted(groups)
    for g, d in groups.items():
        xr.testing.assert_identical(back[g], clean_attrs(d))
        back[g].close()  # the file is closed already: a no-op, the values stay
        assert np.isfinite(back[g]["r2"].values).all()


def _nc_entries(path) -> dict:
    """Every group and variable of a netCDF-4 file as netCDF-C sees it: dtype, dims,
    chunking, filters, attributes with their types, raw values (no masking or scaling)."""
    import netCDF4

    out = {}

    def walk(g, prefix):
        out[prefix or "/"] = ({k: (type(g.getncattr(k)).__name__, repr(g.getncattr(k)))
                               for k in g.ncattrs()}, {k: len(v) for k, v in g.dimensions.items()})
        for name, v in g.variables.items():
            v.set_auto_maskandscale(False)
            out[f"{prefix}/{name}"] = (
                str(v.dtype), v.dimensions, v.chunking(), v.filters(),
                {k: (type(v.getncattr(k)).__name__, repr(v.getncattr(k))) for k in v.ncattrs()},
                repr(np.asarray(v[...]).tolist()))
        for name, sub in g.groups.items():
            walk(sub, f"{prefix}/{name}")

    with netCDF4.Dataset(path) as nc:
        walk(nc, "")
    return out


def test_writers_make_the_files_xarray_makes(tmp_path, rng):
    """write_netcdf and write_results (one pass, values after all definitions) make, entry by
    entry, the file xarray's to_netcdf (netCDF-C) makes: one dataset, and group by group."""
    from facebrain._runfolder import write_netcdf

    ds = xr.Dataset(
        {"r2": (("layer", "voxel"), rng.standard_normal((3, 8)).astype(np.float32)),
         "n": ("layer", np.array([3, 4, 5], np.int64)),
         "ok": ("layer", np.array([True, False, True])),
         "gap": ("voxel", np.where(rng.random(8) < 0.3, np.nan, 1.0))},
        coords={"layer": ["layer1", "layer2", "avgpool"],
                "roi": ("voxel", np.array(["EVC", "rFFA"] * 4)),
                "t": ("voxel", np.arange(8) * np.timedelta64(2, "s"))},
        attrs={"model": "net", "chance": 1 / 7, "flag": True, "names": ["a", "b"],
               "nested": {"k": [1, 2]}, "none": None, "ints": [1, 2]})
    want = clean_attrs(ds)
    want.to_netcdf(tmp_path / "ref.nc", engine="netcdf4")
    write_netcdf(ds, tmp_path / "ours.nc")
    assert _nc_entries(tmp_path / "ours.nc") == _nc_entries(tmp_path / "ref.nc")
    groups = {"rsa/net": ds, "rsa/net/sub": ds.isel(voxel=slice(3)).rename(voxel="v"),
              "encoding/net": ds.isel(layer=[0])}
    for g, d in groups.items():
        clean_attrs(d).to_netcdf(tmp_path / "ref_results.nc", group=g, engine="netcdf4",
                                 mode="a" if (tmp_path / "ref_results.nc").exists() else "w")
    index = {g: sorted(map(str, d.data_vars)) for g, d in groups.items()}
    import json

    xr.Dataset(attrs={"groups": json.dumps(index, sort_keys=True),
                      "title": "facebrain results"}).to_netcdf(
        tmp_path / "ref_results.nc", mode="a", engine="netcdf4")
    write_results(groups, tmp_path / "results.nc")
    assert _nc_entries(tmp_path / "results.nc") == _nc_entries(tmp_path / "ref_results.nc")


def test_read_results_names_the_file_and_the_fix(tmp_path):
    """A missing file, a file that is not netCDF, a netCDF file without the group index
    and an index naming a group that is not there each get an error naming the path."""
    import xarray as xr

    from facebrain.errors import DataFormatError, MissingFileError

    with pytest.raises(MissingFileError, match=r"nothere\.nc: no such file"):
        read_results(tmp_path / "nothere.nc")
    (tmp_path / "text.nc").write_text("not netCDF")
    with pytest.raises(DataFormatError, match=r"text\.nc: not a netCDF-4 file"):
        read_results(tmp_path / "text.nc")
    plain = tmp_path / "plain.nc"
    xr.Dataset({"a": ("x", [1.0, 2.0])}).to_netcdf(plain, engine="h5netcdf")
    with pytest.raises(DataFormatError, match=r"plain\.nc: no 'groups' attribute.*read_netcdf"):
        read_results(plain)
    short = tmp_path / "short.nc"
    write_results({"rsa/net": xr.Dataset({"a": ("x", [1.0])})}, short)
    xr.Dataset(attrs={"groups": '{"rsa/net": ["a"], "encoding/net": ["r2"]}'}).to_netcdf(
        short, mode="a", engine="h5netcdf")
    with pytest.raises(DataFormatError, match=r"short\.nc: group 'encoding/net' is listed"):
        read_results(short)
    assert list(read_results(write_results({"rsa/net": xr.Dataset({"a": ("x", [1.0])})},
                                           short))) == ["rsa/net"]


def test_results_nc_written_beside_equals_the_in_process_write(tmp_path, rng):
    """The report's groups, sent to a second process, make the file the report makes.

    (Every pipeline test that reaches the report on a 2-core machine writes results.nc
    this way; this test compares the two ways on the report's own fake results.)
    """
    from facebrain.pipeline._workers import BesideJob
    from facebrain.report._build import result_groups

    groups = result_groups(_fakes.report_data(rng))
    assert len(groups) > 5
    here, beside = tmp_path / "here.nc", tmp_path / "beside.nc"
    write_results(groups, here)
    with BesideJob(write_results, (groups, beside), threads=None,
                            name="results.nc") as job:
        assert str(job.result()) == str(beside)
    ta, tb = xr.open_datatree(here, engine="h5netcdf"), xr.open_datatree(beside, engine="h5netcdf")
    try:
        paths = [node.path for node in ta.subtree]
        assert paths == [node.path for node in tb.subtree] and len(paths) > len(groups)
        for path in paths:
            x, y = ta[path].to_dataset().load(), tb[path].to_dataset().load()
            assert x.identical(y), path
    finally:
        ta.close()
        tb.close()


def test_figures_fit_their_canvas_drawn_once(tmp_path, monkeypatch):
    """A figure saved as laid out (no crop) keeps every label and legend on the canvas.

    Each of the report's figures is drawn, then its content's bounding box (legends
    outside the axes included) must lie inside the figure; figures without a layout
    engine (nilearn's glass brain) are cropped to their content when saved.
    """
    import matplotlib

    from facebrain.report import _html
    from facebrain.report._figures import PLAIN_TEXT

    checked: list[tuple[bool, bool, str]] = []
    original = _html.figure_to_base64

    def check(fig, **kw):
        with matplotlib.rc_context(PLAIN_TEXT):
            fig.canvas.draw()
            box = fig.get_tightbbox(fig.canvas.get_renderer())
        w, h = fig.get_size_inches()
        laid_out = fig.get_layout_engine() is not None
        inside = box.x0 >= -0.02 and box.y0 >= -0.02 and box.x1 <= w + 0.02 and box.y1 <= h + 0.02
        checked.append((laid_out, inside, fig.axes[0].get_title() if fig.axes else ""))
        return original(fig, **kw)

    monkeypatch.setattr(_html, "figure_to_base64", check)
    summary = write_report(_fakes.report_data(np.random.default_rng(7)), tmp_path)
    assert len(checked) == summary["n_figures"] == 12
    assert sum(laid_out for laid_out, _, _ in checked) == 11  # all but the glass brain
    assert all(inside for laid_out, inside, _ in checked if laid_out), checked
