"""Helpers shared by several test modules, one concern per module. A test module imports what it
needs from here (never from another test module), so each test file can be read, run and changed
on its own. In-process app and worker-process helpers are in tests/apptools.py, generated media in
tests/media.py, the real servers' fixtures in tests/servers/."""
