"""The one error a screenplay parser raises: malformed input, said in one line."""

from __future__ import annotations

from storyboard_contract.errors import UsageError


class ScreenplayError(UsageError):
    """A screenplay file that cannot be read as one (broken or hostile XML, no paragraphs, no
    content). Bad input: exit code 2, like every UsageError."""

    def __init__(self, message: str) -> None:
        # One line whatever the cause: an XML parser's message may carry a newline.
        super().__init__(" ".join(message.split()))
