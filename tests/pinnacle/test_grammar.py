"""The Pinnacle text grammar, one quirk at a time."""

from __future__ import annotations

from rtvault.pinnacle.grammar import parse_bytes, split_stamp


def parse(text: str | bytes):
    data = text.encode("latin-1") if isinstance(text, str) else text
    return parse_bytes(data, "Plan_0/plan.Test")


def test_scalars_keep_their_kind():
    result = parse('Name = "BRAIN";\nCount = 12;\nDose = 2.5e+01;\nNeg = -5.83777e-07;\nMRN = "000123";\n')
    root = result.root
    assert result.problems == []
    assert root.get("Name") == "BRAIN"
    assert root.get("Count") == 12 and isinstance(root.get("Count"), int)
    assert root.get("Dose") == 25.0
    assert root.get("Neg") == -5.83777e-07
    assert root.get("MRN") == "000123"  # a quoted number stays text: MRNs keep leading zeros


def test_nested_objects_and_repeated_children_in_a_list():
    result = parse('PlanList ={\n  Plan ={ PlanID = 0; PlanName = "A"; };\n  Plan ={ PlanID = 1; };\n};\n')
    plans = result.root.child("PlanList").items_list()
    assert [p.get("PlanID") for p in plans] == [0, 1]
    assert plans[0].get("PlanName") == "A"
    assert result.root.to_data() == {"PlanList": {"Plan": [{"PlanID": 0, "PlanName": "A"}, {"PlanID": 1}]}}


def test_hash_items_become_a_list():
    result = parse('ControlPointList ={\n  #0 ={ Gantry = 79; };\n  #1 ={ Gantry = 81; };\n};\n')
    assert result.root.to_data() == {"ControlPointList": [{"Gantry": 79}, {"Gantry": 81}]}


def test_simple_string_items():
    result = parse('MountPointList ={\n  SimpleString ={\n    String = "Mount_0";\n  };\n'
                   '  SimpleString ={ String = "Mount_1"; };\n};\n')
    items = result.root.child("MountPointList").items_list()
    assert [item.get("String") for item in items] == ["Mount_0", "Mount_1"]


def test_numeric_array_with_trailing_comma_and_exponents():
    result = parse("RawData ={\n  Points[] ={\n    -12.0066,-12.6974,\n    1e+30,0,\n  };\n};\n")
    assert result.problems == []
    assert result.root.child("RawData").get("Points") == [-12.0066, -12.6974, 1e30, 0.0]


def test_dotted_keys_nest():
    result = parse("DoseGrid .VoxelSize .X = 0.3;\nDoseGrid .VoxelSize .Y = 0.4;\nDoseGrid .Display2d = 1;\n")
    grid = result.root.child("DoseGrid")
    assert grid.child("VoxelSize").get("X") == 0.3
    assert grid.child("VoxelSize").get("Y") == 0.4
    assert grid.get("Display2d") == 1
    assert len(result.root.get_all("DoseGrid")) == 1


def test_comments_of_both_kinds_are_ignored():
    result = parse('// a line comment = 3;\nA = 1; // trailing\n/* block\n  B = 2; */\nC = "x // not a comment";\n')
    assert result.root.to_data() == {"A": 1, "C": "x // not a comment"}


def test_escaped_quotes_and_backslashes():
    result = parse('ODM = "Bad Value!  Programming Error\\\\\\"";\nQ = "say \\"hi\\"";\n')
    assert result.root.get("ODM") == 'Bad Value!  Programming Error\\"'
    assert result.root.get("Q") == 'say "hi"'


def test_strings_spanning_lines_keep_their_newlines():
    result = parse('Comment = "first line\nsecond line";\nAfter = 2;\n')
    assert result.root.get("Comment") == "first line\nsecond line"
    assert result.root.get("After") == 2


def test_bare_xdr_values_are_kept_as_text():
    result = parse("RecordDoseData = \\XDR:0\\;\nThickness = \\XDR_COPY:5\\;\n")
    assert result.root.get("RecordDoseData") == "\\XDR:0\\"
    assert result.root.get("Thickness") == "\\XDR_COPY:5\\"


def test_latin1_bytes_decode_to_accented_text():
    data = b'LastName = "LEF\xc8VRE";\nFirstName = "H\xe9l\xe8ne";\n'
    result = parse(data)
    assert result.root.get("LastName") == "LEFÈVRE"
    assert result.root.get("FirstName") == "Hélène"


def test_trailing_stamp_with_arbitrary_bytes_is_split_off():
    for stamp in (b"J\x06", b"~\x13", b"*/", b"\n\x00", b"\xef\xbf\xbd\xef\xbf\xbd", b'"{'):
        data = b"A = 1;\n\n/* " + stamp + b" */\n"
        result = parse(data)
        assert result.problems == [], stamp
        assert result.stamp == stamp
        assert result.root.to_data() == {"A": 1}


def test_split_stamp_leaves_files_without_stamp_alone():
    assert split_stamp(b"A = 1;\n") == (b"A = 1;\n", None)


def test_truncated_file_reports_file_and_line_and_keeps_what_was_read():
    result = parse('LastName = "DUPONT";\nPlanList ={\n  Plan ={\n    PlanName = "SEIN";\n')
    assert result.root.get("LastName") == "DUPONT"
    assert result.root.child("PlanList").items_list()[0].get("PlanName") == "SEIN"
    [problem] = result.problems
    assert problem.file == "Plan_0/plan.Test"
    assert problem.line == 5
    assert "unclosed" in problem.message and "PlanList" in problem.message


def test_unterminated_string_is_reported_at_its_line():
    result = parse('A = 1;\nB = "never closed;\nC = 3;\n')
    assert result.root.get("A") == 1
    assert any(p.line == 2 and "unterminated string" in p.message for p in result.problems)


def test_garbage_statement_is_skipped_and_parsing_resumes():
    result = parse('A = 1;\nthis is not pinnacle;\nB = 2;\n}\nC = 3;\n')
    assert result.root.get("A") == 1
    assert result.root.get("B") == 2
    assert result.root.get("C") == 3
    assert [p.line for p in result.problems] == [2, 4]


def test_missing_semicolon_is_reported():
    result = parse("A = 1\n}\n")
    assert result.root.get("A") == 1
    assert any("missing ';'" in p.message for p in result.problems)


def test_problems_are_capped_per_file():
    result = parse(b"x y;\n" * 100)
    assert len(result.problems) == 11
    assert "90 more problems" in result.problems[-1].message


def test_fixture_files_parse_without_problems(pinnacle_sample):
    skip = (".header", "plan.roi", "LICENSE")
    for path in sorted(pinnacle_sample.rglob("*")):
        if path.is_file() and ".binary." not in path.name and not path.name.endswith(skip):
            result = parse_bytes(path.read_bytes(), path.name)
            assert result.problems == [], path
            assert len(result.root) > 0, path


def test_fixture_plan_trial_holds_its_quirks(pinnacle_sample):
    trial_file = pinnacle_sample / "Institution_1/Mount_0/Patient_1/Plan_0/plan.Trial"
    trials = parse_bytes(trial_file.read_bytes(), "plan.Trial").root.get_all("Trial")
    assert trials[0].get("Name") == "Trial_1"
    assert trials[0].child("DoseGrid").child("Dimension").to_data() == {"X": 93, "Y": 110, "Z": 89}
    assert trials[0].get("RecordDoseData") == "\\XDR:0\\"


def test_hostile_nesting_depth_is_cut_not_a_crash():
    deep = "A ={\n" * 5000 + "X = 1;\n" + "};\n" * 5000 + "After = 2;\n"
    result = parse(deep)
    assert result.root.get("After") == 2
    assert any("nested deeper than" in p.message for p in result.problems)


def test_value_cut_by_the_end_of_file_is_not_kept():
    result = parse('LastName = "DUPONT";\nPatientID = 100')  # was 10000 before the file was cut
    assert result.root.get("LastName") == "DUPONT"
    assert "PatientID" not in result.root
    assert [(p.line, "value not kept" in p.message) for p in result.problems] == [(2, True)]


def test_a_utf8_byte_order_mark_is_dropped_with_a_warning():
    """A Patient file saved by a Windows editor: the mark must not glue itself to the first key."""
    data = b'\xef\xbb\xbfLastName = "LEF\xc3\x88VRE";\nFirstName = "H\xc3\xa9l\xc3\xa8ne";\n\n/* J\x06 */\n'
    result = parse(data)
    assert result.root.get("LastName") == "LEFÈVRE"
    assert result.root.get("FirstName") == "Hélène"
    assert result.root.keys() == ["LastName", "FirstName"]
    assert result.stamp == b"J\x06"
    [problem] = result.problems
    assert problem.line == 1 and "UTF-8 byte order mark" in problem.message and "read as UTF-8" in problem.message


def test_a_byte_order_mark_before_latin1_bytes_keeps_them_as_latin1():
    result = parse(b'\xef\xbb\xbfLastName = "LEF\xc8VRE";\n')
    assert result.root.get("LastName") == "LEFÈVRE"
    [problem] = result.problems
    assert "UTF-8 byte order mark" in problem.message and "Latin-1" in problem.message
