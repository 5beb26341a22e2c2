"""The tool pipeline: the wrapper ringfence puts around every declared tool."""
