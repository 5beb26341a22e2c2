"""Review of an app's tools before they ship: ``lint`` reads the descriptions a model will see,
``lock`` pins each tool's contract so that CI notices when it changes."""
