"""The shared health record: patient linkage to the master index, the record and who may open it, family
doctors and chronic disease management."""
