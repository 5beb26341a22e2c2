"""``ringfence preview``: a local host page that shows an app's widgets the way ChatGPT does."""
