"""The national directory of clinical subjects (医疗机构诊疗科目名录): the first-level codes and their names.

A department's `subject_code` is a code of this directory ("03" 内科, or a subdivision such as "03.01");
the slot feed codes each Schedule's serviceType with it.
"""

from __future__ import annotations

SYSTEM = "urn:cityhealth:clinical-subject"

NAMES = {
    "01": "预防保健科", "02": "全科医疗科", "03": "内科", "04": "外科", "05": "妇产科", "06": "妇女保健科",
    "07": "儿科", "08": "小儿外科", "09": "儿童保健科", "10": "眼科", "11": "耳鼻咽喉科", "12": "口腔科",
    "13": "皮肤科", "14": "医疗美容科", "15": "精神科", "16": "传染科", "17": "结核病科", "18": "地方病科",
    "19": "肿瘤科", "20": "急诊医学科", "21": "康复医学科", "22": "运动医学科", "23": "职业病科",
    "24": "临终关怀科", "25": "特种医学与军事医学科", "26": "麻醉科", "27": "疼痛科", "28": "重症医学科",
    "30": "医学检验科", "31": "病理科", "32": "医学影像科", "50": "中医科", "51": "民族医学科",
    "52": "中西医结合科", "69": "其他业务科室",
}


def coding(subject_code: str) -> dict[str, str] | None:
    """The coding of a subject code: the code itself when named here, else its first-level code (a coarser
    but exact coding: 03.01 is a kind of 03); None for a code outside the directory."""
    for code in (subject_code, subject_code.split(".")[0]):
        if code in NAMES:
            return {"system": SYSTEM, "code": code, "display": NAMES[code]}
    return None
