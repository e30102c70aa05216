"""Remote diagnosis networks: teleconsultation, ECG, lab, imaging and pathology."""
