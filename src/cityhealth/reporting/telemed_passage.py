"""The bulletin's 远程医疗系统数据统计: one paragraph per network, as the seed prints it, between the booking
tables and the data-collection tables.

Teleconsultation, ECG, lab and imaging give the month's members, coverage, volumes and three largest uploaders;
pathology its cumulative counts. A figure the data lacks leaves its clause out rather than printing a guess.
"""

from __future__ import annotations

from cityhealth.reporting.model import BulletinData, Pathology, TelemedNetwork, TelemedSection, TopUploader

TITLE = "远程医疗系统数据统计"
# What the seed calls the members each members_by_kind key counts.
KIND_LABELS = {
    "nanjing_tertiary": "市内三级医院",
    "nanjing_secondary_plus": "市内二级及以上医疗机构",
    "community": "社区卫生服务中心",
    "metro_city": "都市圈城市医疗机构",
    "aid": "对口支援医疗机构",
    "other": "其他机构",
}


def _names(codes: list[str], area_names: dict[str, str]) -> str:
    return "、".join(area_names.get(code, code) for code in codes)


def _coverage(network: TelemedNetwork, area_names: dict[str, str]) -> str:
    """"覆盖 9 个区，玄武区、秦淮区、鼓楼区尚未接入"."""
    if network.areas_covered is None:
        return ""
    text = f"覆盖 {network.areas_covered} 个区"
    if network.areas_not_covered:
        text += f"，{_names(network.areas_not_covered, area_names)}尚未接入"
    return text


def _kinds(network: TelemedNetwork) -> str:
    """"其中市内二级及以上医疗机构 24 家、社区卫生服务中心 13 家…" for the keys the network carries."""
    kinds = network.members_by_kind or {}
    if not kinds:
        return ""
    return "其中" + "、".join(f"{KIND_LABELS.get(key, key)} {count} 家" for key, count in kinds.items())


def _top(uploaders: list[TopUploader] | None, unit: str) -> str:
    if not uploaders:
        return ""
    ranked = "、".join(f"{row.hospital} {row.count} {unit}" for row in uploaders)
    return f"上传量前 {len(uploaders)} 位为：{ranked}。"


def _join(*clauses: str) -> str:
    return "，".join(clause for clause in clauses if clause)


def _present(*figures: tuple[str, int | None, str]) -> list[str]:
    """"上传影像报告 12 份" for each figure the data has, in order."""
    return [f"{label} {count} {unit}" for label, count, unit in figures if count is not None]


def _month_volumes(month: int, volumes: list[str]) -> str:
    """"3 月共上传心电病例 12 例，开展远程心电会诊 4 例。", or nothing when the data has no volume."""
    return f"{month} 月共{'，'.join(volumes)}。" if volumes else ""


def consultation_paragraph(city: str, month: int, network: TelemedNetwork, area_names: dict[str, str]) -> str:
    first = _join(f"{city}远程会诊平台共有成员单位 {network.members_total} 家", _kinds(network),
                  _coverage(network, area_names))
    text = f"{first}。"
    if network.consultations_cumulative is not None:
        text += f"截至 {month} 月底，平台累计开展远程会诊 {network.consultations_cumulative} 例。"
    return text


def ecg_paragraph(month: int, network: TelemedNetwork, area_names: dict[str, str]) -> str:
    text = f"远程心电平台共有成员单位 {network.members_total} 家"
    if network.cities:
        text += f"，连接{'、'.join(network.cities)} {len(network.cities)} 个城市"
    kinds = network.members_by_kind or {}
    parts = []
    if "nanjing_tertiary" in kinds:
        parts.append(f"全市 {kinds['nanjing_tertiary']} 家三级医院")
    if network.areas_covered is not None:
        beyond = f"除{_names(network.areas_not_covered, area_names)}外" if network.areas_not_covered else ""
        parts.append(f"{beyond} {network.areas_covered} 个区的社区卫生服务中心".lstrip())
    if "metro_city" in kinds:
        parts.append(f"都市圈城市 {kinds['metro_city']} 家医疗机构")
    if parts:
        text += f"，包括{'、'.join(parts)}"
    text += "。"
    volumes = _present(
        ("上传心电病例", network.cases_month, "例"), ("开展远程心电会诊", network.consultations_month, "例")
    )
    return text + _month_volumes(month, volumes) + _top(network.top_uploaders, "例")


def _platform_paragraph(
    platform: str, month: int, network: TelemedNetwork, area_names: dict[str, str], volumes: list[str]
) -> str:
    """Lab and imaging: members, kinds and coverage, then the month's volumes and the top uploaders."""
    text = _join(f"{platform}共有成员单位 {network.members_total} 家", _kinds(network),
                 _coverage(network, area_names)) + "。"
    return text + _month_volumes(month, volumes) + _top(network.top_uploaders, "份")


def lab_paragraph(month: int, network: TelemedNetwork, area_names: dict[str, str]) -> str:
    volumes = _present(
        ("采集检验报告", network.reports_month, "份"), ("流转标本", network.specimens_routed_month, "份")
    )
    return _platform_paragraph("区域检验平台", month, network, area_names, volumes)


def imaging_paragraph(month: int, network: TelemedNetwork, area_names: dict[str, str]) -> str:
    volumes = _present(
        ("上传影像报告", network.reports_month, "份"),
        ("影像", network.images_month, "幅"),
        ("开展远程影像会诊", network.consultations_month, "例"),
    )
    return _platform_paragraph("区域影像平台", month, network, area_names, volumes)


def pathology_paragraph(month: int, pathology: Pathology) -> str:
    return (f"远程病理会诊系统截至 {month} 月底累计接入医院 {pathology.hospitals} 家、专家 {pathology.experts} 名、"
            f"医生 {pathology.doctors} 名，累计受理病例 {pathology.cases} 例、出具报告 {pathology.reports} 份，"
            f"召开病例讨论会 {pathology.case_discussions} 次，开展视频讲座 {pathology.video_lectures} 次。")


def telemed_paragraphs(data: BulletinData, section: TelemedSection) -> tuple[str, ...]:
    """The section's paragraphs in the seed's order; a network the data lacks has none."""
    area_names = {area.code: area.name for area in data.areas}
    month = data.month_number
    paragraphs: list[str] = []
    if section.consultation is not None:
        paragraphs.append(consultation_paragraph(data.region.name, month, section.consultation, area_names))
    if section.ecg is not None:
        paragraphs.append(ecg_paragraph(month, section.ecg, area_names))
    if section.lab is not None:
        paragraphs.append(lab_paragraph(month, section.lab, area_names))
    if section.imaging is not None:
        paragraphs.append(imaging_paragraph(month, section.imaging, area_names))
    if section.pathology is not None:
        paragraphs.append(pathology_paragraph(month, section.pathology))
    return tuple(paragraphs)
