"""Review of an app's tools before they ship: ``lint`` reads the descriptions a model will see,
``lock`` pins each tool's contract so that CI notices when it changes."""

from ringfence.review.lint import LintFinding, lint_app
from ringfence.review.lock import LockDifference, LockError, check_lock, contract_hash, tool_contract, write_lock
from ringfence.review.tools import ReviewedTool, reviewed_tools

__all__ = [
    "LintFinding",
    "LockDifference",
    "LockError",
    "ReviewedTool",
    "check_lock",
    "contract_hash",
    "lint_app",
    "reviewed_tools",
    "tool_contract",
    "write_lock",
]
