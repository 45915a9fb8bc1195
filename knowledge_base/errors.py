from __future__ import annotations

from kit.errors import Conflict, InvalidInput, NotFound


class InvalidFaqEntry(InvalidInput):
    code = "invalid_faq_entry"
    title = "Invalid FAQ entry"


class FaqEntryNotFound(NotFound):
    code = "faq_entry_not_found"
    title = "FAQ entry not found"


class DuplicateFaqQuestion(Conflict):
    code = "duplicate_question"
    title = "Duplicate FAQ question"


class FaqVersionConflict(Conflict):
    code = "version_conflict"
    title = "The entry changed meanwhile"


class FaqImportRejected(InvalidInput):
    code = "import_rejected"
    title = "Import rejected"
