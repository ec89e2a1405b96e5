"""GossipSub topic names: the one definition every service imports.

Topic names are case-sensitive: a subscriber on ``chorus/coordination/v1`` silently
receives nothing from publishers on ``CHORUS/coordination/v1``. So nothing else in the
repository spells them.
"""

from typing import Final

COORDINATION: Final = "CHORUS/coordination/v1"
META_DISCUSSION: Final = "hmmm/meta-discussion/v1"
CONTEXT_FEEDBACK: Final = "CHORUS/context-feedback/v1"

ALL_TOPICS: Final[tuple[str, ...]] = (COORDINATION, META_DISCUSSION, CONTEXT_FEEDBACK)
