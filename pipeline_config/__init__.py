"""The project's settings (conf/) and credentials: the ground every other package stands on."""
