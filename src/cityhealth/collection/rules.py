"""The stable rule codes of the validator, with their messages in English and Chinese.

Senders key their fixes on `rule`; the codes never change meaning. Messages are templates over the field's
label, the (masked) value and the rule's parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cityhealth.personal_numbers import scrub

RULES: dict[str, tuple[str, str]] = {
    # structure and transport
    "json.malformed": ("the record is not a JSON object: {detail}", "记录不是合法的 JSON 对象：{detail}"),
    "csv.malformed": ("the CSV row does not match the header: {detail}", "CSV 行与表头不符：{detail}"),
    "form.unknown": ("unknown form {value}", "未知的表单 {value}"),
    "form.mismatch": (
        "the record names form {value}, but was sent to form {form}",
        "记录标明的表单 {value} 与上传的表单 {form} 不符",
    ),
    "encoding.invalid": ("the row is not valid text in the declared encoding", "该行不是所声明编码的合法文本"),
    "field.unknown": ("{field} is not a field of form {form}", "{field} 不是表单 {form} 的字段"),
    # organization and identity of the record
    "org_code.unknown": ("organization code {value} is not registered", "机构代码 {value} 未注册"),
    "org_code.not_sender": (
        "organization code {value} is not the sending organization's",
        "机构代码 {value} 不是上传机构的代码",
    ),
    "record_id.duplicate_in_batch": (
        "record id {value} appears more than once in this batch",
        "记录标识 {value} 在本批次中重复出现",
    ),
    "action.no_original": (
        "action {value} needs an existing record, but none was stored under this id",
        "修改标志为 {value} 的记录须有原记录，但该标识下无已入库记录",
    ),
    "action.exists": (
        "a different record is already stored under this id; send action 2 to amend it",
        "该标识下已有不同内容的记录；如需修改请使用修改标志 2",
    ),
    "record.revoked": ("the record was revoked and can no longer be changed", "该记录已撤销，不能再修改"),
    # field rules
    "required": ("{label} ({field}) is required", "{label_zh}（{field}）为必填项"),
    "required.one_of": ("one of {fields} is required", "{fields} 至少填写一项"),
    "type.string": ("{label} ({field}) must be text, not {value}", "{label_zh}（{field}）应为文本，实际为 {value}"),
    "type.integer": (
        "{label} ({field}) must be an integer, not {value}",
        "{label_zh}（{field}）应为整数，实际为 {value}",
    ),
    "type.decimal": (
        "{label} ({field}) must be a number, not {value}",
        "{label_zh}（{field}）应为数值，实际为 {value}",
    ),
    "type.boolean": (
        "{label} ({field}) must be true/false or 1/0, not {value}",
        "{label_zh}（{field}）应为 true/false 或 1/0，实际为 {value}",
    ),
    "type.list": ("{label} ({field}) must be a list of objects", "{label_zh}（{field}）应为对象列表"),
    "length.max": ("{label} ({field}) is longer than {length} characters", "{label_zh}（{field}）超过 {length} 个字符"),
    "list.min_items": (
        "{label} ({field}) needs at least {min_items} item(s)",
        "{label_zh}（{field}）至少需要 {min_items} 项",
    ),
    "pattern": (
        "{label} ({field}) does not have the required shape: {value}",
        "{label_zh}（{field}）格式不符：{value}",
    ),
    "range.min": (
        "{label} ({field}) must be at least {minimum}, not {value}",
        "{label_zh}（{field}）不得小于 {minimum}，实际为 {value}",
    ),
    "range.max": (
        "{label} ({field}) must be at most {maximum}, not {value}",
        "{label_zh}（{field}）不得大于 {maximum}，实际为 {value}",
    ),
    "format.date": (
        "{label} ({field}) must be a date as yyyyMMdd (or ISO 8601), not {value}",
        "{label_zh}（{field}）应为 yyyyMMdd（或 ISO 8601）格式的日期，实际为 {value}",
    ),
    "format.datetime": (
        "{label} ({field}) must be a date-time as yyyyMMddHHmmss (or ISO 8601 with an offset), not {value}",
        "{label_zh}（{field}）应为 yyyyMMddHHmmss（或带时区的 ISO 8601）格式，实际为 {value}",
    ),
    "code.not_in_table": (
        "{label} ({field}): code {value} is not in table {table}",
        "{label_zh}（{field}）：代码 {value} 不在值域 {table} 中",
    ),
    "code.name_mismatch": (
        "{label} ({field}): name {value} does not match code {code} in table {table} (expected {expected})",
        "{label_zh}（{field}）：名称 {value} 与值域 {table} 中代码 {code} 的名称 {expected} 不符",
    ),
    "icd10.shape": (
        "{label} ({field}): {value} is not shaped like an ICD-10 code (e.g. I10, J18.900)",
        "{label_zh}（{field}）：{value} 不符合 ICD-10 编码格式（如 I10、J18.900）",
    ),
    "icd9cm3.shape": (
        "{label} ({field}): {value} is not shaped like an ICD-9-CM-3 code (e.g. 47.09)",
        "{label_zh}（{field}）：{value} 不符合 ICD-9-CM-3 编码格式（如 47.09）",
    ),
    "time.order": ("{label} ({field}) is earlier than {other}", "{label_zh}（{field}）早于 {other}"),
    "time.future": ("{label} ({field}) is in the future: {value}", "{label_zh}（{field}）晚于当前时间：{value}"),
    "event_time.future": (
        "the event time {field} is in the future: {value}",
        "业务发生时间 {field} 晚于当前时间：{value}",
    ),
    "amount.exceeds": ("{label} ({field}) exceeds {other}", "{label_zh}（{field}）超过 {other}"),
    "phone.format": (
        "phone number {value} is neither a mainland mobile nor a landline",
        "电话号码 {value} 既非大陆手机号也非固定电话",
    ),
    # ID numbers (the rule codes of registry.identifiers)
    "id_number.length": (
        "ID number {value}: 18 characters (15 in the legacy form) expected",
        "身份证号 {value}：应为 18 位（旧版 15 位）",
    ),
    "id_number.charset": (
        "ID number {value}: 17 digits and a check character expected",
        "身份证号 {value}：应为 17 位数字加 1 位校验码",
    ),
    "id_number.check_char": ("ID number {value}: the check character does not match", "身份证号 {value}：校验码不正确"),
    "id_number.area_code": ("ID number {value}: not a GB/T 2260 province code", "身份证号 {value}：地址码无效"),
    "id_number.birth_date": ("ID number {value}: the birth date is not valid", "身份证号 {value}：出生日期无效"),
    "id_number.sex_mismatch": (
        "ID number {value} encodes a different sex than {other}",
        "身份证号 {value} 所含性别与 {other} 不符",
    ),
    "id_number.birth_date_mismatch": (
        "ID number {value} encodes a different birth date than {other}",
        "身份证号 {value} 所含出生日期与 {other} 不符",
    ),
}


@dataclass(frozen=True, slots=True)
class RecordError:
    """One broken rule of one record: the field, the stable rule code, the masked value, both messages."""

    field: str
    rule: str
    message: str
    message_zh: str
    value: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "rule": self.rule,
            "value": self.value,
            "message": self.message,
            "message_zh": self.message_zh,
        }


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""


def make_error(rule: str, field: str, value: str | None = None, **params: Any) -> RecordError:
    """Build a RecordError from the catalogue; `value` must already be masked if its field is personal data.

    Whatever the field, ID and mobile numbers are masked in the value and the messages: a sender may put
    one anywhere, and the error goes back in the answer and into the job's stored rejections.
    """
    english, chinese = RULES[rule]
    value = None if value is None else scrub(value)
    values = _Blank(field=field, value="" if value is None else value, **params)
    values.setdefault("label", field)
    values.setdefault("label_zh", values["label"])
    return RecordError(
        field=field,
        rule=rule,
        message=scrub(english.format_map(values)),
        message_zh=scrub(chinese.format_map(values)),
        value=value,
    )
