"""The monthly bulletin (南京卫生信息化简报) and its machine-readable export, read-only over the domains."""
