"""Remote diagnosis networks: members, cases, reading centres, ECG, lab, imaging and pathology."""
