"""An app that declares no tools."""

from ringfence import App

app = App("empty")
