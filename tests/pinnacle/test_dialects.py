"""The `.header` and `plan.roi` dialects."""

from __future__ import annotations

from rtvault.pinnacle.dialects import parse_header, parse_roi

HEADER = b"""\tbyte_order = 0;
\tx_dim = 512;
\tz_pixdim = 0.250000;
\tread_conversion = "";
\tdim_units :\x20
\tdb_name : LEF\xc8VRE^H\xc9L\xc8NE
\tSeriesDateTime : 2020-01-01 10:00:00
\tmanufacturer : GE MEDICAL SYSTEMS
"""

ROI = b"""// Region of Interest file
 file_stamp={
       write_date: Wed Jan 01 10:00:00 2020
  }; // End of file_stamp
 roi={
           name: PTV sein
           flags =          135168;
           volume =         0.953669;
           num_curve = 2;
               curve={
                       num_points =  2;
points={
-1.07428 11.914 2
-0.976625 11.914 2
 };  // End of points for curve 1
}; // End of curve 1
               curve={
points={
1 2 3
 };
};
}; // End of ROI PTV sein
 roi={
           name: Moelle
};
"""


def test_header_mixes_assignments_and_colon_lines():
    result = parse_header(HEADER, "ImageSet_0.header")
    root = result.root
    assert result.problems == []
    assert root.get("x_dim") == 512
    assert root.get("z_pixdim") == 0.25
    assert root.get("read_conversion") == ""
    assert root.get("dim_units") == ""
    assert root.get("db_name") == "LEFÈVRE^HÉLÈNE"
    assert root.get("SeriesDateTime") == "2020-01-01 10:00:00"  # the colon inside the value is kept


def test_header_garbage_line_is_reported_with_its_number():
    result = parse_header(b"x_dim = 4;\n@@@ nonsense\ny_dim = 5;\n", "ImageSet_1.header")
    assert result.root.get("y_dim") == 5
    [problem] = result.problems
    assert (problem.file, problem.line) == ("ImageSet_1.header", 2)


def test_roi_blocks_curves_and_points():
    result = parse_roi(ROI, "plan.roi")
    assert result.problems == []
    rois = result.root.get_all("roi")
    assert [r.get("name") for r in rois] == ["PTV sein", "Moelle"]
    curves = rois[0].get_all("curve")
    assert len(curves) == 2
    assert curves[0].get("points") == [[-1.07428, 11.914, 2.0], [-0.976625, 11.914, 2.0]]
    assert curves[1].get("points") == [[1.0, 2.0, 3.0]]
    assert rois[0].get("flags") == 135168
    assert result.root.child("file_stamp").get("write_date") == "Wed Jan 01 10:00:00 2020"


def test_roi_truncated_inside_points_is_reported():
    cut = ROI[: ROI.index(b"-0.976625")]
    result = parse_roi(cut, "plan.roi")
    assert result.root.get_all("roi")[0].get_all("curve")[0].get("points") == [[-1.07428, 11.914, 2.0]]
    assert any("unclosed block" in p.message for p in result.problems)


def test_roi_bad_point_is_reported_and_skipped():
    bad = ROI.replace(b"1 2 3", b"1 two 3")
    result = parse_roi(bad, "plan.roi")
    assert any("not a point" in p.message and p.line is not None for p in result.problems)


def test_fixture_header_and_roi(pinnacle_sample):
    patient = pinnacle_sample / "Institution_1/Mount_0/Patient_1"
    header = parse_header((patient / "ImageSet_0.header").read_bytes(), "h")
    assert header.problems == []
    assert (header.root.get("x_dim"), header.root.get("y_dim"), header.root.get("z_dim")) == (512, 512, 101)
    assert header.root.get("patient_position") == "HFS"
    roi = parse_roi((patient / "Plan_0/plan.roi").read_bytes(), "plan.roi")
    assert roi.problems == []
    rois = roi.root.get_all("roi")
    assert rois and all(r.get("name") for r in rois)
    for r in rois:
        curves = r.get_all("curve")
        assert len(curves) == r.get("num_curve")
        assert all(len(c.get("points")) == c.get("num_points") for c in curves)
