"""The shared health record room: family doctors and chronic disease management (more to come)."""
