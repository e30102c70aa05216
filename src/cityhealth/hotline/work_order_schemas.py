"""Request and response shapes of the work-order API: the two 12345 systems' pushes (each its own shape), the
hotline's own orders, the steps of an order's life, and the holiday calendar."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from cityhealth.db.types import RowId

Category = Literal["consultation", "help", "complaint", "urgent"]
Source = Literal["city_12345", "province_12345", "self_received"]
State = Literal["received", "dispatched", "replied", "closed", "reopened"]
Sla = Literal["on_time", "due_soon", "overdue", "closed_late"]
Satisfaction = Literal["satisfied", "basically_satisfied", "dissatisfied"]
OrderId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64,
                                           pattern=r"^[A-Za-z0-9._:\-]+$")]
RequestKey = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64,
                                              pattern=r"^[A-Za-z0-9._:\-]+$")]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Content = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
OrgCode = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CityOrderPush(_Strict):
    """An order as the city 12345 system pushes it, in its own field names (pinyin initials of the Chinese)."""

    gdbh: OrderId = Field(description="工单编号: the city system's order id; a push received twice is one order")
    gdlx: Literal["zx", "qz", "ts", "jj"] = Field(description="工单类型: zx 咨询, qz 求助, ts 投诉, jj 紧急")
    bt: Title = Field(description="标题")
    nr: Content = Field(description="内容")
    cbdw: OrgCode = Field(description="承办单位: the responsible organization's code in the registry")
    slsj: AwareDatetime = Field(description="受理时间: when the city system accepted the call")


class ProvinceOrderPush(_Strict):
    """An order as the provincial 12345 system pushes it."""

    orderNo: OrderId = Field(description="The provincial system's order id; a push received twice is one order")
    orderType: Literal["CONSULT", "HELP", "COMPLAINT", "URGENT"]
    title: Title
    content: Content
    handleOrgCode: OrgCode = Field(description="The responsible organization's code in the registry")
    acceptTime: AwareDatetime


class WorkOrderCreate(_Strict):
    """A complaint the hotline received itself (自受理), optionally from one of its calls."""

    request_key: RequestKey = Field(description="The client's key for this order: a retry with it is one order")
    category: Category
    title: Title
    content: Content
    organization_id: RowId = Field(description="The responsible organization, in the registry")
    call_id: RowId | None = Field(default=None, description="The hotline call the complaint was taken on")


class IntakeResult(BaseModel):
    work_order_id: int
    created: bool = Field(description="False when the order was already held (a repeated push)")
    state: State
    due_at: datetime


class StepIn(_Strict):
    request_key: RequestKey = Field(description="The client's key for this step: a retry with it is one step")
    note: Text | None = None


class ReplyIn(_Strict):
    request_key: RequestKey
    reply: Text


class ExtensionRequestIn(_Strict):
    request_key: RequestKey
    working_days: int = Field(ge=1, le=30, description="Working days added to the deadline if approved")
    reason: Text


class CallbackIn(_Strict):
    request_key: RequestKey
    satisfaction: Satisfaction
    note: Text | None = None


class WorkOrderEventRead(BaseModel):
    seq: int
    kind: str
    at: datetime
    actor: str
    note: str | None
    data: dict[str, object]


class WorkOrderRead(BaseModel):
    id: int
    source: Source
    source_order_id: str | None
    category: Category
    title: str
    content: str
    organization_id: int
    organization_name: str
    call_id: int | None
    received_at: datetime
    state: State
    sla: Sla
    due_at: datetime
    pending_extension_days: int | None
    callback: Satisfaction | None


class WorkOrderDetail(WorkOrderRead):
    events: list[WorkOrderEventRead]


class DayIn(_Strict):
    day: date
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]


class HolidayYearIn(_Strict):
    """A year's arrangement: its public holidays and the weekend days worked instead (调休上班)."""

    holidays: list[DayIn] = Field(max_length=60)
    workdays: list[DayIn] = Field(max_length=20)
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None = None


class HolidayYearRead(BaseModel):
    year: int
    source: Literal["shipped", "set", "none"]
    status: str
    note: str | None
    holidays: list[DayIn]
    workdays: list[DayIn]
