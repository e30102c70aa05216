"""Remote diagnosis networks: members, cases routed to reading centres, reports and consultations; ECG,
lab, imaging and pathology."""
