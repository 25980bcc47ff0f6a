"""The web console: static pages and plain ES-module JavaScript, served by the server under
/console (api/console.py reads these files by package name); they talk to the server over HTTP."""
