"""The installer: installs the wheels of a verified manifest."""
