"""National identifiers: resident ID numbers, unified social credit codes, phone numbers.

Pure functions over strings, no I/O. An ID number is sensitive personal information (PIPL art. 28), so
no error message, repr or log line built here ever carries a whole one: they carry the masked form.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from datetime import date, datetime
from enum import IntEnum
from zoneinfo import ZoneInfo

__all__ = [
    "IdentifierError",
    "ResidentId",
    "Sex",
    "cross_check_resident_id",
    "make_resident_id",
    "make_uscc",
    "mask_phone",
    "mask_resident_id",
    "parse_resident_id",
    "resident_id_check_char",
    "uscc_check_char",
    "validate_phone",
    "validate_uscc",
]

_SHANGHAI = ZoneInfo("Asia/Shanghai")
_DIGITS = frozenset("0123456789")


class IdentifierError(ValueError):
    """An identifier broke a rule; `rule` is a stable code such as `id_number.check_char`."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message


class Sex(IntEnum):
    """GB/T 2261.1 codes; an ID number only ever encodes these two."""

    MALE = 1
    FEMALE = 2


# --- Resident ID number (居民身份证号, GB 11643-1999) ---------------------------------------------

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK_CHARS = "10X98765432"
_ID_ZEROS = ord("0") * sum(_ID_WEIGHTS)
_EARLIEST_BIRTH_YEAR = 1880  # the standard's own example number is born 1880-01-01

# First two digits of a GB/T 2260 area code. 71 is Taiwan in GB/T 2260; 81/82/83 are the address
# codes on the residence permits of Hong Kong, Macao and Taiwan residents (2018), which carry numbers
# in this same format. Districts are deliberately not checked against a current list: codes retired
# by later redistricting (320103 白下区, 320107 下关区, 320124 溧水县, 320125 高淳县 …) stay valid
# in the numbers issued under them.
_PROVINCE_PREFIXES = frozenset(
    [f"{p}" for p in range(11, 16)]
    + [f"{p}" for p in range(21, 24)]
    + [f"{p}" for p in range(31, 38)]
    + [f"{p}" for p in range(41, 47)]
    + [f"{p}" for p in range(50, 55)]
    + [f"{p}" for p in range(61, 66)]
    + ["71", "81", "82", "83"]
)


@dataclass(frozen=True, slots=True)
class ResidentId:
    """A checked resident ID number, normalised to its 18-character form."""

    number: str
    area_code: str
    birth_date: date
    sex: Sex
    is_legacy_15: bool

    @property
    def masked(self) -> str:
        return mask_resident_id(self.number)

    def __repr__(self) -> str:
        # The dataclass repr would print the whole number into any log or traceback.
        return f"ResidentId({self.masked})"


def resident_id_check_char(first17: str) -> str:
    """The check character (0-9 or X) of an 18-character number whose first 17 digits are given."""
    if len(first17) != 17:
        raise IdentifierError("id_number.length", "the check character is computed over exactly 17 digits")
    if not _DIGITS.issuperset(first17):
        raise IdentifierError("id_number.charset", "the first 17 characters of an ID number must be digits")
    # Over the ASCII codes (digits checked above), less the weighted '0's: a bulk import checks millions of these.
    total = sum(map(operator.mul, first17.encode("ascii"), _ID_WEIGHTS)) - _ID_ZEROS
    return _ID_CHECK_CHARS[total % 11]


def parse_resident_id(value: str, *, today: date | None = None) -> ResidentId:
    """Check an 18-character number (or convert a 15-digit legacy one) and decode it.

    `today` bounds the birth date; it defaults to the current date in Asia/Shanghai.
    """
    s = value.strip()
    masked = mask_resident_id(s)
    if len(s) == 15:
        if not _DIGITS.issuperset(s):
            raise IdentifierError(
                "id_number.charset", f"ID number {masked}: a 15-digit number is digits only"
            )
        legacy = True
        first17 = s[:6] + "19" + s[6:]
        number = first17 + resident_id_check_char(first17)
    elif len(s) == 18:
        first17, check = s[:17], s[17].upper()
        if not _DIGITS.issuperset(first17) or not (check in _DIGITS or check == "X"):
            raise IdentifierError(
                "id_number.charset",
                f"ID number {masked}: 17 digits and a check character (0-9 or X) expected",
            )
        if resident_id_check_char(first17) != check:
            raise IdentifierError(
                "id_number.check_char",
                f"ID number {masked}: the check character does not match (mistyped digit?)",
            )
        legacy = False
        number = first17 + check
    else:
        raise IdentifierError(
            "id_number.length",
            f"an ID number has 18 characters (15 digits in the legacy form), not {len(s)}",
        )

    area_code = number[:6]
    if area_code[:2] not in _PROVINCE_PREFIXES:
        raise IdentifierError(
            "id_number.area_code",
            f"ID number {masked}: {area_code[:2]} is not a GB/T 2260 province code",
        )
    birth_date = _birth_date(number[6:14], masked, today)
    sex = Sex.MALE if int(number[16]) % 2 == 1 else Sex.FEMALE
    return ResidentId(number=number, area_code=area_code, birth_date=birth_date, sex=sex, is_legacy_15=legacy)


def _birth_date(yyyymmdd: str, masked: str, today: date | None) -> date:
    try:
        born = date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    except ValueError:
        raise IdentifierError(
            "id_number.birth_date", f"ID number {masked}: the birth date is not a calendar date"
        ) from None
    if born.year < _EARLIEST_BIRTH_YEAR:
        raise IdentifierError(
            "id_number.birth_date", f"ID number {masked}: birth year before {_EARLIEST_BIRTH_YEAR}"
        )
    if today is None:
        today = datetime.now(_SHANGHAI).date()
    if born > today:
        raise IdentifierError("id_number.birth_date", f"ID number {masked}: the birth date is in the future")
    return born


def cross_check_resident_id(rid: ResidentId, *, sex: int | None, birth_date: date | None) -> None:
    """Refuse a record whose own sex or birth date contradicts its ID number.

    `sex` is a GB/T 2261.1 code: 1 and 2 are compared, 0 (unknown) and 9 (unstated) are not.
    """
    if sex is not None and sex not in (0, 1, 2, 9):
        raise ValueError(f"sex must be a GB/T 2261.1 code (0, 1, 2 or 9), not {sex!r}")
    if sex in (1, 2) and sex != rid.sex:
        raise IdentifierError(
            "id_number.sex_mismatch", f"ID number {rid.masked} encodes a different sex than the record's"
        )
    if birth_date is not None and birth_date != rid.birth_date:
        raise IdentifierError(
            "id_number.birth_date_mismatch",
            f"ID number {rid.masked} encodes a different birth date than the record's",
        )


def make_resident_id(area_code: str, birth_date: date, seq: int, sex: Sex | None = None) -> str:
    """A valid 18-character number (for tests and the simulator).

    `seq` is the 3-digit sequence code, 0-999; its parity is the sex (odd = male). If `sex` is given it
    must agree with that parity: the number is never silently changed, so distinct `seq` values always
    give distinct numbers.
    """
    if len(area_code) != 6 or not _DIGITS.issuperset(area_code) or area_code[:2] not in _PROVINCE_PREFIXES:
        raise ValueError("area_code must be 6 digits starting with a GB/T 2260 province code")
    if birth_date.year < _EARLIEST_BIRTH_YEAR:
        raise ValueError(f"birth year before {_EARLIEST_BIRTH_YEAR}")
    if not 0 <= seq <= 999:
        raise ValueError("seq must be between 0 and 999")
    if sex is not None and (seq % 2 == 1) != (sex == Sex.MALE):
        raise ValueError("seq parity disagrees with sex (odd = male, even = female)")
    first17 = f"{area_code}{birth_date:%Y%m%d}{seq:03d}"
    return first17 + resident_id_check_char(first17)


# --- Unified social credit code (统一社会信用代码, GB 32100-2015) -------------------------------------

_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # no I, O, S, V, Z
_USCC_VALUES = {c: i for i, c in enumerate(_USCC_ALPHABET)} | {
    c.lower(): i for i, c in enumerate(_USCC_ALPHABET) if c.isalpha()
}
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def uscc_check_char(first17: str) -> str:
    """The check character of a credit code whose first 17 characters are given."""
    if len(first17) != 17:
        raise IdentifierError("uscc.length", "the check character is computed over exactly 17 characters")
    try:
        total = sum(_USCC_VALUES[c] * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    except KeyError:
        raise IdentifierError(
            "uscc.charset", f"a credit code uses only the characters {_USCC_ALPHABET}"
        ) from None
    return _USCC_ALPHABET[(31 - total % 31) % 31]


def validate_uscc(value: str) -> str:
    """Check a unified social credit code; returns it stripped and upper-cased."""
    s = value.strip()
    if len(s) != 18:
        raise IdentifierError("uscc.length", f"a unified social credit code has 18 characters, not {len(s)}")
    if any(c not in _USCC_VALUES for c in s):
        raise IdentifierError("uscc.charset", f"a credit code uses only the characters {_USCC_ALPHABET}")
    code = s.upper()  # safe: every character is now an ASCII letter or digit
    if uscc_check_char(code[:17]) != code[17]:
        raise IdentifierError(
            "uscc.check_char", f"credit code {code}: the check character does not match (mistyped character?)"
        )
    if not _DIGITS.issuperset(code[2:8]):
        raise IdentifierError(
            "uscc.area_code", f"credit code {code}: characters 3-8 must be a 6-digit GB/T 2260 area code"
        )
    return code


def make_uscc(first17: str) -> str:
    """A valid credit code: `first17` plus its check character (for tests and the simulator)."""
    return validate_uscc(first17 + uscc_check_char(first17.upper()))


# --- Masking and phone numbers ------------------------------------------------------------------


def mask_resident_id(number: str) -> str:
    """`320102********123X`; a 15-digit number keeps its first 6 and last 3. Other lengths: all `*`."""
    s = number.strip().upper()
    if len(s) == 18:
        return s[:6] + "*" * 8 + s[-4:]
    if len(s) == 15:
        return s[:6] + "*" * 6 + s[-3:]
    # Not an ID number's shape: there is no safe part to show.
    return "*" * len(s)


def mask_phone(phone: str) -> str:
    """`138****5678`: the first 3 and last 4 stay when there are at least 8 characters."""
    s = phone.strip()
    if len(s) < 8:
        return "*" * len(s)
    return s[:3] + "*" * (len(s) - 7) + s[-4:]


# [0-9], not \d: \d also matches full-width and other Unicode digits.
_MOBILE = re.compile(r"1[3-9][0-9]{9}")
# Area code 0 + 2-3 digits, a 7-8 digit local number (never starting 0 or 1), optional extension.
_LANDLINE = re.compile(r"0[1-9][0-9]{1,2}-?[2-9][0-9]{6,7}(?:-[0-9]{1,6})?")


def validate_phone(value: str) -> str:
    """A mainland mobile (`13812345678`) or landline (`025-83626620`, `02583626620`); returns it stripped."""
    s = value.strip()
    if _MOBILE.fullmatch(s) or _LANDLINE.fullmatch(s):
        return s
    raise IdentifierError(
        "phone.format",
        f"phone number {mask_phone(s)} is neither a mainland mobile (11 digits starting 13-19)"
        " nor a landline (area code 0xx or 0xxx, 7-8 digits, optional -extension)",
    )


# GB/T 2260 province-level divisions (省级行政区): code prefix → name.
PROVINCE_NAMES = {
    "11": "北京市", "12": "天津市", "13": "河北省", "14": "山西省", "15": "内蒙古自治区", "21": "辽宁省",
    "22": "吉林省", "23": "黑龙江省", "31": "上海市", "32": "江苏省", "33": "浙江省", "34": "安徽省",
    "35": "福建省", "36": "江西省", "37": "山东省", "41": "河南省", "42": "湖北省", "43": "湖南省",
    "44": "广东省", "45": "广西壮族自治区", "46": "海南省", "50": "重庆市", "51": "四川省", "52": "贵州省",
    "53": "云南省", "54": "西藏自治区", "61": "陕西省", "62": "甘肃省", "63": "青海省", "64": "宁夏回族自治区",
    "65": "新疆维吾尔自治区", "71": "台湾省", "81": "香港特别行政区", "82": "澳门特别行政区",
}


def province_of(area_code: str) -> tuple[str, str] | None:
    """The province (code, name) containing a GB/T 2260 area code, or None for a non-standard code."""
    name = PROVINCE_NAMES.get(area_code[:2]) if area_code[:6].isdigit() else None
    return None if name is None else (f"{area_code[:2]}0000", name)
