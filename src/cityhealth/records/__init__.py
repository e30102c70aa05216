"""The shared health record: patient linkage to the master index, the record itself, and who may open it."""
