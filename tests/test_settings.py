import pytest

from pneumonia_aug.errors import SettingError
from pneumonia_aug.settings import GRAMMAR, PAPER_TABLE1, Setting, parse_setting


@pytest.mark.parametrize(
    "text, expected",
    [
        ("DCGAN-1-0.6", Setting("DCGAN", 1.0, 0.6)),
        ("DCGAN-1.0-0.6", Setting("DCGAN", 1.0, 0.6)),
        ("Original-0.3-0", Setting("Original", 0.3, 0.0)),
        ("cgan-0.3-1", Setting("CGAN", 0.3, 1.0)),
        ("CGAN-0.25-0.3", Setting("CGAN", 0.25, 0.3)),
    ],
)
def test_valid_names_parse_and_canonicalise(text, expected):
    setting = parse_setting(text)
    assert setting == expected
    assert parse_setting(setting.name) == setting


def test_canonical_name_has_one_decimal():
    assert parse_setting("DCGAN-1-0.6").name == "DCGAN-1.0-0.6"
    assert parse_setting("Original-1-0").name == "Original-1.0-0.0"
    assert parse_setting("CGAN-0.25-1").name == "CGAN-0.25-1.0"
    assert parse_setting("DCGAN-1.0-0.6").gan == "DCGAN"
    assert parse_setting("Original-1.0-0.0").gan is None


@pytest.mark.parametrize(
    "text, reason",
    [
        ("DCGAN-1.5-0.6", "outside (0, 1]"),
        ("DCGAN-0-0.6", "outside (0, 1]"),
        ("FOO-1.0-0.3", "unknown source"),
        ("Original-1.0-0.3", "Original adds no generated images"),
        ("DCGAN-1.0-0.0", "needs g > 0"),
        ("DCGAN-1.0-1.2", "outside [0, 1]"),
        ("DCGAN-1.0", "invalid setting"),
        ("", "invalid setting"),
        ("DCGAN-a-0.3", "invalid setting"),
    ],
)
def test_invalid_names_are_rejected_with_the_grammar(text, reason):
    with pytest.raises(SettingError) as info:
        parse_setting(text)
    message = str(info.value)
    assert reason in message
    assert GRAMMAR in message


def test_paper_rows_are_canonical():
    assert [parse_setting(s).name for s in PAPER_TABLE1] == list(PAPER_TABLE1)
    assert len(PAPER_TABLE1) == 12
