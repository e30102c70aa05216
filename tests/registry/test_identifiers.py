from __future__ import annotations

from datetime import date

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from cityhealth.registry.identifiers import (
    IdentifierError,
    ResidentId,
    Sex,
    cross_check_resident_id,
    make_resident_id,
    make_uscc,
    mask_phone,
    mask_resident_id,
    parse_resident_id,
    resident_id_check_char,
    uscc_check_char,
    validate_phone,
    validate_uscc,
)

TODAY = date(2022, 7, 28)  # the bulletin's issue date; fixed so the tests never depend on the clock

# Current Nanjing districts, retired ones (白下 320103, 下关 320107, 溧水县 320124, 高淳县 320125)
# and a few other provinces, including the HK/Macao/Taiwan residence-permit codes.
AREA_CODES = [
    "320102", "320104", "320105", "320106", "320111", "320113", "320114", "320115", "320116",
    "320117", "320118", "320103", "320107", "320124", "320125", "110105", "440524", "650102",
    "810000", "820000", "830000",
]  # fmt: skip

area_codes = st.sampled_from(AREA_CODES)
birth_dates = st.dates(min_value=date(1900, 1, 1), max_value=date(2020, 12, 31))
sequences = st.integers(min_value=0, max_value=999)
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
# Substitutes for a single character: every valid character plus some that must be refused.
ID_SUBSTITUTES = "0123456789Xx A-\uff11"  # \uff11 is a full-width 1, which str.isdigit() accepts
USCC_SUBSTITUTES = USCC_ALPHABET + USCC_ALPHABET.lower() + "IOSVZ -\uff11"


@st.composite
def valid_ids(draw: st.DrawFn) -> str:
    return make_resident_id(draw(area_codes), draw(birth_dates), draw(sequences))


@st.composite
def valid_usccs(draw: st.DrawFn) -> str:
    head = draw(st.text(alphabet=USCC_ALPHABET, min_size=2, max_size=2))
    area = draw(st.text(alphabet="0123456789", min_size=6, max_size=6))
    tail = draw(st.text(alphabet=USCC_ALPHABET, min_size=9, max_size=9))
    return make_uscc(head + area + tail)


# --- resident ID: properties -----------------------------------------------------------------


@given(area=area_codes, born=birth_dates, seq=sequences)
def test_every_generated_id_parses_back_to_its_parts(area: str, born: date, seq: int) -> None:
    number = make_resident_id(area, born, seq)
    rid = parse_resident_id(number, today=TODAY)
    assert rid.number == number
    assert rid.area_code == area
    assert rid.birth_date == born
    assert rid.sex == (Sex.MALE if seq % 2 else Sex.FEMALE)
    assert rid.is_legacy_15 is False
    cross_check_resident_id(rid, sex=int(rid.sex), birth_date=born)


@given(
    number=valid_ids(),
    position=st.integers(min_value=0, max_value=17),
    substitute=st.sampled_from(ID_SUBSTITUTES),
)
def test_every_single_character_substitution_is_refused(number: str, position: int, substitute: str) -> None:
    # Weighted sum mod 11 with every weight nonzero mod 11 (11 prime): changing one digit d -> d'
    # shifts the sum by w*(d'-d), never 0 mod 11, so the check character always catches it, before the
    # record's sex and birth date are even consulted.
    if substitute.upper() == number[position]:
        return  # unchanged, or only the case of the X
    changed = number[:position] + substitute + number[position + 1 :]
    with pytest.raises(IdentifierError) as caught:
        parse_resident_id(changed, today=TODAY)
    # A space at either end is stripped as surrounding whitespace, which leaves 17 characters.
    assert caught.value.rule in {"id_number.length", "id_number.charset", "id_number.check_char"}
    assert changed not in str(caught.value)


@given(number=valid_ids(), position=st.integers(min_value=0, max_value=15))
def test_every_adjacent_transposition_of_different_digits_is_refused(number: str, position: int) -> None:
    a, b = number[position], number[position + 1]
    if a == b:
        return
    swapped = number[:position] + b + a + number[position + 2 :]
    with pytest.raises(IdentifierError, match="check character"):
        parse_resident_id(swapped, today=TODAY)


@given(
    area=area_codes, born=st.dates(min_value=date(1900, 1, 1), max_value=date(1999, 12, 31)), seq=sequences
)
def test_legacy_15_digit_number_converts_to_18_and_back(area: str, born: date, seq: int) -> None:
    legacy = f"{area}{born:%y%m%d}{seq:03d}"
    rid = parse_resident_id(legacy, today=TODAY)
    assert rid.is_legacy_15 is True
    assert len(rid.number) == 18
    assert rid.number == make_resident_id(area, born, seq)
    assert rid.number[:6] + rid.number[8:17] == legacy
    upgraded = parse_resident_id(rid.number, today=TODAY)
    assert (upgraded.area_code, upgraded.birth_date, upgraded.sex) == (rid.area_code, rid.birth_date, rid.sex)
    assert upgraded.is_legacy_15 is False


@given(number=valid_ids())
def test_error_messages_never_contain_the_number(number: str) -> None:
    rid = parse_resident_id(number, today=TODAY)
    other_sex = 1 if rid.sex == Sex.FEMALE else 2
    for call in (
        lambda: parse_resident_id(number, today=date(1899, 1, 1)),
        lambda: cross_check_resident_id(rid, sex=other_sex, birth_date=None),
        lambda: cross_check_resident_id(rid, sex=None, birth_date=date(1800, 1, 1)),
    ):
        with pytest.raises(IdentifierError) as caught:
            call()
        assert number not in str(caught.value)
        assert mask_resident_id(number) in str(caught.value)
    assert number not in repr(rid)
    assert number not in str(rid)


# --- resident ID: examples --------------------------------------------------------------------


def test_standard_example_is_a_woman_born_1949_12_31() -> None:
    rid = parse_resident_id("11010519491231002X", today=TODAY)
    assert rid == ResidentId(
        number="11010519491231002X",
        area_code="110105",
        birth_date=date(1949, 12, 31),
        sex=Sex.FEMALE,
        is_legacy_15=False,
    )


def test_standard_example_born_1880_is_accepted() -> None:
    rid = parse_resident_id("440524188001010014", today=TODAY)
    assert (rid.birth_date, rid.sex) == (date(1880, 1, 1), Sex.MALE)


def test_lowercase_x_and_surrounding_whitespace_are_normalised() -> None:
    assert parse_resident_id(" 11010519491231002x\n", today=TODAY).number == "11010519491231002X"


def test_wrong_check_character_is_refused() -> None:
    with pytest.raises(IdentifierError) as caught:
        parse_resident_id("110105194912310021", today=TODAY)
    assert caught.value.rule == "id_number.check_char"
    assert "110105194912310021" not in str(caught.value)
    assert "110105********0021" in str(caught.value)


def test_check_char_of_standard_example() -> None:
    assert resident_id_check_char("11010519491231002") == "X"


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("", "id_number.length"),
        ("11010519491231002", "id_number.length"),
        ("11010519491231002XX", "id_number.length"),
        ("1101051949123100", "id_number.length"),
        ("1101051949123100X2", "id_number.charset"),
        ("11010519491231002Y", "id_number.charset"),
        ("11010\uff1119491231002X", "id_number.charset"),  # full-width digit
        ("110105 9491231002X", "id_number.charset"),
        ("11010549123100X", "id_number.charset"),
    ],
)
def test_malformed_numbers_are_refused_by_rule(value: str, rule: str) -> None:
    with pytest.raises(IdentifierError) as caught:
        parse_resident_id(value, today=TODAY)
    assert caught.value.rule == rule


def _with_check(first17: str) -> str:
    return first17 + resident_id_check_char(first17)


@pytest.mark.parametrize(
    ("first17", "rule"),
    [
        ("00010519491231002", "id_number.area_code"),
        ("99010519491231002", "id_number.area_code"),
        ("72010019491231002", "id_number.area_code"),
        ("11010519490229002", "id_number.birth_date"),  # 1949 is not a leap year
        ("11010519491301002", "id_number.birth_date"),
        ("11010518791231002", "id_number.birth_date"),  # before 1880
        ("11010520220729002", "id_number.birth_date"),  # the day after TODAY
    ],
)
def test_well_checked_numbers_with_impossible_content_are_refused(first17: str, rule: str) -> None:
    with pytest.raises(IdentifierError) as caught:
        parse_resident_id(_with_check(first17), today=TODAY)
    assert caught.value.rule == rule


def test_obsolete_district_codes_are_accepted() -> None:
    for area in ("320103", "320107", "320124", "320125"):
        number = make_resident_id(area, date(1980, 5, 1), 123)
        assert parse_resident_id(number, today=TODAY).area_code == area


def test_born_today_is_accepted() -> None:
    number = make_resident_id("320102", TODAY, 1)
    assert parse_resident_id(number, today=TODAY).birth_date == TODAY


def test_default_today_is_used_when_none_given() -> None:
    assert parse_resident_id("11010519491231002X").birth_date == date(1949, 12, 31)


def test_legacy_15_digit_example() -> None:
    rid = parse_resident_id("320102800501123", today=TODAY)
    assert rid.number == "32010219800501123" + resident_id_check_char("32010219800501123")
    assert (rid.birth_date, rid.sex, rid.is_legacy_15) == (date(1980, 5, 1), Sex.MALE, True)


def test_cross_check_refuses_other_sex_and_birth_date() -> None:
    rid = parse_resident_id("11010519491231002X", today=TODAY)
    cross_check_resident_id(rid, sex=2, birth_date=date(1949, 12, 31))
    with pytest.raises(IdentifierError) as caught:
        cross_check_resident_id(rid, sex=1, birth_date=None)
    assert caught.value.rule == "id_number.sex_mismatch"
    with pytest.raises(IdentifierError) as caught:
        cross_check_resident_id(rid, sex=None, birth_date=date(1949, 12, 30))
    assert caught.value.rule == "id_number.birth_date_mismatch"


@pytest.mark.parametrize("unknown", [0, 9, None])
def test_cross_check_skips_unknown_sex(unknown: int | None) -> None:
    rid = parse_resident_id("11010519491231002X", today=TODAY)
    cross_check_resident_id(rid, sex=unknown, birth_date=None)


def test_cross_check_refuses_a_sex_code_outside_gbt_2261_1() -> None:
    rid = parse_resident_id("11010519491231002X", today=TODAY)
    with pytest.raises(ValueError, match=r"GB/T 2261\.1"):
        cross_check_resident_id(rid, sex=3, birth_date=None)


def test_make_resident_id_refuses_sex_that_disagrees_with_sequence() -> None:
    assert make_resident_id("320102", date(1990, 1, 1), 7, Sex.MALE).endswith(
        resident_id_check_char("32010219900101007")
    )
    with pytest.raises(ValueError, match="parity"):
        make_resident_id("320102", date(1990, 1, 1), 7, Sex.FEMALE)
    with pytest.raises(ValueError, match="seq"):
        make_resident_id("320102", date(1990, 1, 1), 1000)
    with pytest.raises(ValueError, match="area_code"):
        make_resident_id("990102", date(1990, 1, 1), 1)


def test_check_char_helper_refuses_non_digits() -> None:
    with pytest.raises(IdentifierError) as caught:
        resident_id_check_char("1101051949123100X")
    assert caught.value.rule == "id_number.charset"
    with pytest.raises(IdentifierError) as caught:
        resident_id_check_char("1101051949")
    assert caught.value.rule == "id_number.length"


# --- unified social credit code ----------------------------------------------------------------


@given(code=valid_usccs())
def test_every_generated_uscc_is_valid(code: str) -> None:
    assert validate_uscc(code) == code
    assert validate_uscc(f" {code.lower()} ") == code


@given(
    code=valid_usccs(),
    position=st.integers(min_value=0, max_value=17),
    substitute=st.sampled_from(USCC_SUBSTITUTES),
)
@example(code="91350100M000100Y43", position=17, substitute="4")
def test_every_single_uscc_substitution_is_refused(code: str, position: int, substitute: str) -> None:
    # Weights are all nonzero mod 31 (prime) and distinct characters have distinct values, so any
    # one-character change moves the weighted sum and the check character no longer matches.
    if substitute.upper() == code[position]:
        return
    changed = code[:position] + substitute + code[position + 1 :]
    with pytest.raises(IdentifierError) as caught:
        validate_uscc(changed)
    assert caught.value.rule in {"uscc.length", "uscc.charset", "uscc.check_char"}


@pytest.mark.parametrize(
    "code",
    [
        "91350100M000100Y43",  # the example code printed in GB 32100-2015
        "91330100799655058B",  # 阿里巴巴（中国）有限公司
        "91440300708461136T",  # 深圳市腾讯计算机系统有限公司
        "914403001922038216",  # 华为技术有限公司
    ],
)
def test_real_credit_codes_are_valid(code: str) -> None:
    assert validate_uscc(code) == code


def test_uscc_check_char_of_standard_example() -> None:
    assert uscc_check_char("91350100M000100Y4") == "3"


def test_uscc_check_value_31_maps_to_zero() -> None:
    # Sum 0 mod 31 would give 31 - 0 = 31, which is written as 0.
    assert uscc_check_char("0" * 17) == "0"
    assert validate_uscc("0" * 18) == "0" * 18


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("91350100M000100Y4", "uscc.length"),
        ("91350100M000100Y433", "uscc.length"),
        ("91350100M000100Y4I", "uscc.charset"),
        ("91350100O000100Y43", "uscc.charset"),
        ("91350100M000100Y44", "uscc.check_char"),
    ],
)
def test_malformed_credit_codes_are_refused_by_rule(value: str, rule: str) -> None:
    with pytest.raises(IdentifierError) as caught:
        validate_uscc(value)
    assert caught.value.rule == rule


def test_credit_code_with_letters_in_the_area_code_is_refused() -> None:
    first17 = "9135A100M000100Y4"
    with pytest.raises(IdentifierError) as caught:
        validate_uscc(first17 + uscc_check_char(first17))
    assert caught.value.rule == "uscc.area_code"


def test_make_uscc_refuses_a_letter_in_the_area_code() -> None:
    with pytest.raises(IdentifierError) as caught:
        make_uscc("9135A100M000100Y4")
    assert caught.value.rule == "uscc.area_code"


# --- masking and phones ---------------------------------------------------------------------------


def test_mask_resident_id() -> None:
    assert mask_resident_id("32010219800501123X") == "320102********123X"
    assert mask_resident_id("11010519491231002x") == "110105********002X"
    assert mask_resident_id("320102800501123") == "320102******123"
    assert mask_resident_id("3201021980") == "**********"


@given(number=valid_ids())
def test_masked_id_keeps_length_and_hides_birth_date_and_sequence(number: str) -> None:
    masked = mask_resident_id(number)
    assert len(masked) == 18
    assert masked[6:14] == "*" * 8


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("13812345678", "138****5678"),
        ("025-83626620", "025*****6620"),
        ("83626620", "836*6620"),
        ("1234567", "*******"),
        ("", ""),
    ],
)
def test_mask_phone(phone: str, masked: str) -> None:
    assert mask_phone(phone) == masked


@pytest.mark.parametrize(
    "phone",
    ["13812345678", "19912345678", " 15951234567 ", "025-83626620", "02583626620", "010-65123456",
     "0512-6812345", "025-83626620-8012"],
)  # fmt: skip
def test_valid_phones(phone: str) -> None:
    assert validate_phone(phone) == phone.strip()


@pytest.mark.parametrize(
    "phone",
    ["12812345678", "1381234567", "138123456789", "83626620", "025-03626620", "25-83626620",
     "138 1234 5678", "+8613812345678", "１3812345678", "025-83626620-", ""],
)  # fmt: skip
def test_invalid_phones_are_refused_without_echoing_the_number(phone: str) -> None:
    with pytest.raises(IdentifierError) as caught:
        validate_phone(phone)
    assert caught.value.rule == "phone.format"
    if len(phone) >= 8:
        assert phone not in str(caught.value)
