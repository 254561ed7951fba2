"""A cell's limits file is checked field by field: every mistake is one ValueError naming the file and field."""
import pytest

from robot.safety import SafetyLimits


@pytest.mark.parametrize("text, message", [
    ("max_translation: 'fast'\n", "max_translation: expected a number, got 'fast'"),
    ("watchdog_ms: true\n", "watchdog_ms: expected a number, got True"),
    ("workspace_low: [0.2, 0.0]\n", "workspace_low: expected 3 numbers"),
    ("workspace_high: [a, 1, 2]\n", "workspace_high: expected 3 numbers"),
    ("max_rotation: .inf\n", "max_rotation: expected a positive finite number, got inf"),
    ("max_translation: [0.1\nwatchdog_ms: 300\n", "line 2, column 12: YAML syntax error"),
    ("- 0.1\n", "expected a YAML map of safety settings, got list"),
])
def test_bad_limits_files_name_the_file_and_field(tmp_path, text, message):
    path = tmp_path / "cell.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match="cell.yaml") as error:
        SafetyLimits.from_yaml(path)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_numbers_as_yaml_writes_them(tmp_path):
    (tmp_path / "cell.yaml").write_text("max_translation: 1e-2\nwatchdog_ms: 300\nworkspace_low: [0.3, -0.2, 0]\n")
    limits = SafetyLimits.from_yaml(tmp_path / "cell.yaml")  # YAML 1.1 reads 1e-2 as a string
    assert limits.max_translation == 0.01 and limits.watchdog_ms == 300.0 and limits.workspace_low == (0.3, -0.2, 0.0)
    with pytest.raises(FileNotFoundError, match="missing.yaml: no such file"):
        SafetyLimits.from_yaml(tmp_path / "missing.yaml")
